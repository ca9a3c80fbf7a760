"""Consumer groups on the bus file: members, their leases, and who owns which partition.

A member holds a lease that its polls renew; a member whose lease has lapsed (it stopped
polling) or that stopped is removed by the next member to look. Every member computes
Kafka's range assignment from the list of live members, releases what is no longer its
own at its next poll (after committing what it processed, since services commit before
they poll again) and takes a partition only once it has no owner, starting from the
group's committed offset. Any change of members or owners bumps the group's version,
which every member reads as it polls.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from backend.bus.embedded.schema import PUT_OFFSET, ends, marks
from backend.bus.embedded.topics import Topic, Topics
from backend.sqlite import transaction

Start = Literal["earliest", "latest", "tail"]
"""Where a partition without a committed offset begins (see `EmbeddedSubscription`)."""

_BUMP_GROUP = (
    "INSERT INTO groups (name, version) VALUES (?, 1)"
    " ON CONFLICT (name) DO UPDATE SET version = version + 1"
)


@dataclass(frozen=True, slots=True)
class Synced:
    owned: frozenset[int]
    starts: dict[int, int]
    """Where each partition this member has just taken starts."""
    committed: dict[int, int]
    """Of those, the ones that start at the group's committed offset."""
    version: int
    at: float
    known_topics: int
    """How many of the member's topics exist."""


class Member:
    """One member of `group` reading `topics`, under an id of its own; its methods are jobs
    for the worker thread."""

    def __init__(
        self, topics: Topics, group: str, names: tuple[str, ...], start: Start, session_s: float
    ) -> None:
        self.group = group
        self.id = uuid.uuid4().hex
        self._topics = topics
        self._names = names
        self._start = start
        self._session_s = session_s

    def sync(self, have: frozenset[int], conn: sqlite3.Connection) -> Synced:
        """Renew the lease, drop lapsed members, release and take partitions."""
        group = self.group
        me = self.id
        now = time.time()
        with transaction(conn, write=True):
            changed = False
            lapsed = [
                (group, member)
                for (member,) in conn.execute(
                    "SELECT member FROM members WHERE grp = ? AND expires < ?", (group, now)
                )
            ]
            if lapsed:
                conn.executemany("DELETE FROM members WHERE grp = ? AND member = ?", lapsed)
                conn.executemany("DELETE FROM owners WHERE grp = ? AND member = ?", lapsed)
                changed = True
            renewed = conn.execute(
                "UPDATE members SET expires = ? WHERE grp = ? AND member = ?",
                (now + self._session_s, group, me),
            )
            if renewed.rowcount == 0:
                conn.execute(
                    "INSERT INTO members (grp, member, topics, expires) VALUES (?, ?, ?, ?)",
                    (group, me, "\n".join(self._names), now + self._session_s),
                )
                changed = True
            members = [
                (member, topics.split("\n"))
                for member, topics in conn.execute(
                    "SELECT member, topics FROM members WHERE grp = ? ORDER BY member", (group,)
                )
            ]
            wanted = {topic for _, topics in members for topic in topics}
            known = self._topics.known(conn, sorted(wanted))
            known_topics = sum(1 for topic in self._names if topic in known)
            target = _range_assignment(members, me, known)
            owners: dict[int, str] = dict(
                conn.execute("SELECT lane, member FROM owners WHERE grp = ?", (group,)).fetchall()
            )
            mine = {lane for lane, member in owners.items() if member == me}
            release = mine - target
            take = sorted(lane for lane in target if lane not in owners)
            if release:
                conn.executemany(
                    "DELETE FROM owners WHERE grp = ? AND lane = ?",
                    [(group, lane) for lane in release],
                )
                changed = True
            if take:
                conn.executemany(
                    "INSERT INTO owners (grp, lane, member) VALUES (?, ?, ?)",
                    [(group, lane, me) for lane in take],
                )
                changed = True
            if changed:
                conn.execute(_BUMP_GROUP, (group,))
            row = conn.execute("SELECT version FROM groups WHERE name = ?", (group,)).fetchone()
            version = 0 if row is None else int(row[0])
            owned = frozenset((mine - release) | set(take))
            fresh = sorted(set(take) | (owned - have))
            starts: dict[int, int] = {}
            committed: dict[int, int] = {}
            if fresh:
                committed = dict(
                    conn.execute(
                        "SELECT lane, offset FROM offsets"
                        f" WHERE grp = ? AND lane IN ({marks(len(fresh))})",
                        (group, *fresh),
                    ).fetchall()
                )
                at_end = ends(conn, fresh) if self._start != "earliest" else {}
                for lane in fresh:
                    if lane in committed:
                        starts[lane] = committed[lane]
                    else:
                        starts[lane] = at_end.get(lane, 0)
        return Synced(owned, starts, committed, version, now, known_topics)

    def leave(self, conn: sqlite3.Connection) -> None:
        with transaction(conn, write=True):
            conn.execute("DELETE FROM members WHERE grp = ? AND member = ?", (self.group, self.id))
            conn.execute("DELETE FROM owners WHERE grp = ? AND member = ?", (self.group, self.id))
            conn.execute(_BUMP_GROUP, (self.group,))

    def commit(self, pending: dict[int, int], conn: sqlite3.Connection) -> None:
        """Commit `pending` for the partitions this member still owns (the rest moved on)."""
        with transaction(conn, write=True):
            mine = {
                lane
                for (lane,) in conn.execute(
                    "SELECT lane FROM owners WHERE grp = ? AND member = ?", (self.group, self.id)
                )
            }
            conn.executemany(
                PUT_OFFSET,
                [(self.group, lane, offset) for lane, offset in pending.items() if lane in mine],
            )


def _range_assignment(
    members: list[tuple[str, list[str]]], me: str, topics: dict[str, Topic]
) -> set[int]:
    """Kafka's range assignment: per topic, consecutive partitions to members by id."""
    mine: set[int] = set()
    for name, topic in topics.items():
        readers = [member for member, wanted in members if name in wanted]
        if me not in readers:
            continue
        index = readers.index(me)
        each, extra = divmod(len(topic.lanes), len(readers))
        first = index * each + min(index, extra)
        mine.update(topic.lanes[first : first + each + (1 if index < extra else 0)])
    return mine
