"""Which JDK the servers run on.

Kafka 4.1 and Elasticsearch 8.19 both run on Java 17 through 25. The integ-test
Elasticsearch has no bundled JDK and ignores JAVA_HOME, so the chosen home is passed to
it as ES_JAVA_HOME.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from backend.stack.errors import StackError

MINIMUM_JAVA = 17
JVM_DIR = Path("/usr/lib/jvm")

_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="(?:1\.)?(\d+)', re.MULTILINE)


def release_major(release_text: str) -> int | None:
    """The major version in a JDK's `release` file (`1.8.0_x` is 8), or None."""
    match = _RELEASE_VERSION.search(release_text)
    return int(match.group(1)) if match else None


def _major(home: Path) -> int | None:
    try:
        return release_major((home / "release").read_text(encoding="utf-8"))
    except OSError:
        return None


def _installed_jdks() -> list[tuple[int, Path]]:
    """JDKs under /usr/lib/jvm with a readable version, newest first."""
    found: dict[Path, int] = {}
    if JVM_DIR.is_dir():
        for entry in JVM_DIR.iterdir():
            home = entry.resolve()
            major = _major(home)
            if major is not None and (home / "bin" / "java").is_file():
                found[home] = major
    return sorted(((major, home) for home, major in found.items()), reverse=True)


def _checked(home: Path, origin: str) -> Path:
    if not (home / "bin" / "java").is_file():
        raise StackError(f"{origin} {home} has no bin/java; Java {MINIMUM_JAVA}+ is required")
    major = _major(home)
    if major is not None and major < MINIMUM_JAVA:
        raise StackError(f"{origin} {home} is Java {major}; Java {MINIMUM_JAVA}+ is required")
    return home


def java_home() -> Path:
    """JAVA_HOME if set, else the newest JDK in /usr/lib/jvm, else that of `java` on PATH."""
    if env_home := os.environ.get("JAVA_HOME"):
        return _checked(Path(env_home), "JAVA_HOME")
    installed = _installed_jdks()
    if installed:
        return _checked(installed[0][1], "the JDK")
    java = shutil.which("java")
    if java is None:
        raise StackError(
            f"Java {MINIMUM_JAVA}+ is required to run Kafka and Elasticsearch: "
            "set JAVA_HOME or put `java` on PATH"
        )
    return _checked(Path(java).resolve().parent.parent, "the JDK of `java` on PATH")
