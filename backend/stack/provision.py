"""Downloads from Maven Central (through `mvn`, so ~/.m2 caches them) and unpacking.

Each artifact is assembled in a `.partial` directory and renamed into place, so an
interrupted fetch is redone rather than half-used.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from backend.stack.errors import StackError
from backend.stack.layout import ELASTICSEARCH_VERSION, KAFKA_VERSION, Layout

POM = Path(__file__).with_name("pom.xml")
ELASTICSEARCH_ARTIFACT = (
    f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ELASTICSEARCH_VERSION}:zip"
)
SERVICE_USER = "logdeck"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GOAL_PREFIX = re.compile(r"^Failed to execute goal .*? on project [^:]+: ")


def maven_error(output: str) -> str:
    """The reason in Maven's first [ERROR] line, without colour codes or the goal preamble."""
    for line in _ANSI.sub("", output).splitlines():
        if line.startswith("[ERROR]"):
            reason = line.removeprefix("[ERROR]").strip()
            if reason:
                return _GOAL_PREFIX.sub("", reason)
    return "see `mvn` output"


def _mvn(goal_args: list[str], what: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            f"Maven (`mvn`) is required to fetch {what} from Maven Central; "
            "install it (e.g. apt-get install maven)"
        )
    print(f"fetching {what} from Maven Central (cached in ~/.m2)...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [mvn, "-B", "-q", "-f", str(POM), *goal_args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise StackError(f"Maven could not fetch {what}: {maven_error(done.stdout + done.stderr)}")


def _fresh(partial: Path) -> Path:
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return partial


def fetch_kafka(layout: Layout) -> bool:
    """Put Kafka's jars in layout.kafka_lib; False if they were already there."""
    if layout.kafka_lib.is_dir():
        return False
    partial = _fresh(layout.kafka_lib.parent.with_name(f".kafka-{KAFKA_VERSION}.partial"))
    _mvn(
        [
            "dependency:copy-dependencies",
            f"-Dkafka.version={KAFKA_VERSION}",
            f"-DoutputDirectory={partial / 'lib'}",
        ],
        f"Kafka {KAFKA_VERSION}",
    )
    partial.rename(layout.kafka_lib.parent)
    return True


def unzip(archive: Path, target: Path) -> None:
    """Extract keeping the Unix permission bits (zipfile drops them; bin/ must stay executable)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = Path(zipped.extract(info, target))
            mode = info.external_attr >> 16 & 0o7777
            if mode:
                path.chmod(mode)


def fetch_elasticsearch(layout: Layout) -> bool:
    """Unpack Elasticsearch into layout.elasticsearch_home; False if it was already there."""
    home = layout.elasticsearch_home
    if home.is_dir():
        return False
    partial = _fresh(home.with_name(f".elasticsearch-{ELASTICSEARCH_VERSION}.partial"))
    _mvn(
        ["dependency:copy", f"-Dartifact={ELASTICSEARCH_ARTIFACT}", f"-DoutputDirectory={partial}"],
        f"Elasticsearch {ELASTICSEARCH_VERSION}",
    )
    unzip(partial / f"elasticsearch-{ELASTICSEARCH_VERSION}.zip", partial)
    (partial / home.name).rename(home)
    shutil.rmtree(partial)
    return True


def fetch(layout: Layout) -> None:
    """Both artifacts, each only if missing."""
    fetch_kafka(layout)
    fetch_elasticsearch(layout)


def _create_service_user() -> None:
    command = [
        "useradd",
        "--system",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--user-group",
        SERVICE_USER,
    ]
    try:
        created = subprocess.run(command, capture_output=True, text=True)
    except OSError as error:
        reason = str(error)
    else:
        if created.returncode == 0:
            return
        reason = created.stderr.strip()
    raise StackError(
        f"cannot create the user {SERVICE_USER!r} that Elasticsearch runs as "
        f"(it refuses root): {reason}"
    )


def service_user() -> tuple[int, int] | None:
    """(uid, gid) to run Elasticsearch as when we are root, creating the user once; else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        _create_service_user()
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give a directory tree to the service user."""
    os.chown(root, uid, gid)
    for parent, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)
