"""What `logdeck deadletter list` and `replay` print: for a person, or (list) as JSON."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any, TextIO

from backend.deadletters.forms import infer_form
from backend.deadletters.letters import Pending, StoredLetter
from backend.deadletters.replay import ReplaySummary

PREVIEW_BYTES = 40


def preview(raw: bytes, limit: int = PREVIEW_BYTES) -> str:
    """The first bytes as text, `.` for each byte that is not printable ASCII."""
    shown = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in raw[:limit])
    return shown + ("…" if len(raw) > limit else "")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _reasons(counts: Counter[str], out: TextIO) -> None:
    for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:>7}  {reason}", file=out)


def print_pending(pending: Pending, out: TextIO) -> None:
    """Counts by reason, then each letter on two lines, oldest first."""
    notes = []
    if pending.replayed:
        notes.append(f"{pending.replayed} more replayed already")
    if pending.unreadable:
        notes.append(f"{_plural(pending.unreadable, 'record')} in the topic not dead letters")
    extra = f" ({'; '.join(notes)})" if notes else ""
    print(f"{_plural(len(pending.letters), 'dead letter')} pending{extra}", file=out)
    if not pending.letters:
        return
    print("by reason:", file=out)
    _reasons(Counter(stored.letter.reason for stored in pending.letters), out)
    for stored in pending.letters:
        letter = stored.letter
        print(f"\n{letter.received_at}  {stored.key}  {letter.reason}", file=out)
        where = [
            f"{name} {value}"
            for name, value in (
                ("source", letter.source),
                ("tag", letter.tag),
                ("peer", letter.peer),
                ("node", letter.node_id),
            )
            if value
        ]
        shape = f"{len(letter.raw)} bytes ({infer_form(letter.raw)})"
        print(f"    {'  '.join([*where, shape])}  {preview(letter.raw)}", file=out)


def _letter_json(stored: StoredLetter) -> dict[str, Any]:
    letter = stored.letter
    return {
        "key": stored.key,
        "partition": stored.partition,
        "offset": stored.offset,
        "received_at": letter.received_at,
        "reason": letter.reason,
        "source": letter.source,
        "tag": letter.tag,
        "peer": letter.peer,
        "node_id": letter.node_id,
        "size": len(letter.raw),
        "form": str(infer_form(letter.raw)),
        "raw": base64.b64encode(letter.raw).decode("ascii"),
    }


def print_pending_json(pending: Pending, out: TextIO) -> None:
    document = {
        "pending": len(pending.letters),
        "replayed": pending.replayed,
        "unreadable": pending.unreadable,
        "reasons": dict(Counter(stored.letter.reason for stored in pending.letters)),
        "letters": [_letter_json(stored) for stored in pending.letters],
    }
    json.dump(document, out, indent=2)
    print(file=out)


def print_summary(summary: ReplaySummary, out: TextIO) -> None:
    published = sum(summary.published.values())
    per_topic = ", ".join(f"{topic} {n}" for topic, n in sorted(summary.published.items()))
    print(f"examined: {_plural(summary.examined, 'dead letter')}", file=out)
    print(f"skipped: {summary.skipped} (replayed before)", file=out)
    print(f"replayed: {summary.replayed}", file=out)
    print(
        f"published: {_plural(published, 'record')}" + (f" ({per_topic})" if per_topic else ""),
        file=out,
    )
    partly = f" ({summary.partly} in part: their valid records published)" if summary.partly else ""
    print(f"still failing: {summary.failing}{partly}", file=out)
    _reasons(summary.reasons, out)
    if summary.unreadable:
        print(f"not dead letters: {_plural(summary.unreadable, 'record')} in the topic", file=out)
