"""Installs the third-party Forward clients of the interop tests, each from its own registry.

    python -m tests.interop.clients     # installs every client; exits 1 naming what failed

Nothing lands in the repository: Node packages, Fluency's jars and the Go program go to
`~/.cache/logdeck/interop` (`$XDG_CACHE_HOME` if set), Maven's downloads to `~/.m2`, Go's
to its module cache. Each installer skips the work when the pinned versions are already
there, so calling them before every test session costs a few file reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

NODE_PACKAGES = {"fluent-logger": "3.4.1", "@fluent-org/logger": "1.0.10"}
FLUENCY_VERSION = "2.7.3"  # also pinned in pom.xml
GO_MODULE = "github.com/fluent/fluent-logger-golang"
GO_VERSION = "v1.10.2"
INSTALL_TIMEOUT = 600.0


class InstallError(Exception):
    """A client could not be installed; the message says which and why."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "logdeck" / "interop"


def _progress(message: str) -> None:
    print(f"interop: {message}", file=sys.stderr, flush=True)


def _run(what: str, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run one install step; an `InstallError` with the tail of its output if it fails."""
    if shutil.which(args[0]) is None:
        raise InstallError(f"{what}: `{args[0]}` is not installed (scripts/setup installs it)")
    try:
        done = subprocess.run(
            list(args),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InstallError(
            f"{what}: `{' '.join(args)}` took over {INSTALL_TIMEOUT:.0f} s"
        ) from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InstallError(f"{what}: `{' '.join(args)}` exited {done.returncode}:\n{tail}")


def _fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def _installed(marker: Path, fingerprint: str) -> bool:
    return marker.is_file() and marker.read_text() == fingerprint


def install_node() -> Path:
    """fluent-logger and @fluent-org/logger from npm; the folder to put in NODE_PATH."""
    folder = cache_dir() / "node"
    fingerprint = _fingerprint(json.dumps(NODE_PACKAGES, sort_keys=True))
    marker = folder / ".installed"
    modules = folder / "node_modules"
    if _installed(marker, fingerprint) and all(
        (modules / name / "package.json").is_file() for name in NODE_PACKAGES
    ):
        return modules
    _progress(f"installing {', '.join(f'{n}@{v}' for n, v in NODE_PACKAGES.items())} from npm")
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    manifest = {"name": "logdeck-interop-node", "private": True, "dependencies": NODE_PACKAGES}
    (folder / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _run(
        "npm install",
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        folder,
    )
    marker.write_text(fingerprint)
    return modules


def install_fluency() -> Path:
    """Fluency and its dependencies from Maven Central; the folder of jars."""
    folder = cache_dir() / "fluency"
    pom = HERE / "pom.xml"
    fingerprint = _fingerprint(pom.read_bytes())
    marker = folder / ".installed"
    lib = folder / "lib"
    if _installed(marker, fingerprint) and any(lib.glob("fluency-fluentd-*.jar")):
        return lib
    _progress(f"fetching org.komamitsu:fluency-fluentd:{FLUENCY_VERSION} from Maven Central")
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    shutil.rmtree(lib, ignore_errors=True)
    _run(
        "mvn dependency:copy-dependencies",
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
        ],
        folder,
    )
    if shutil.which("java") is None:
        raise InstallError("fluency: `java` is not installed (scripts/setup installs it)")
    marker.write_text(fingerprint)
    return lib


def install_go() -> Path:
    """fluent-logger-golang from the Go module proxy, built into tests/interop/go_client's
    program; the path of the binary."""
    folder = cache_dir() / "go"
    source = (HERE / "go_client" / "main.go").read_bytes()
    fingerprint = _fingerprint(source, GO_MODULE, GO_VERSION)
    marker = folder / ".installed"
    binary = folder / "go_client"
    if _installed(marker, fingerprint) and binary.is_file():
        return binary
    _progress(f"building the Go client with {GO_MODULE}@{GO_VERSION}")
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for stale in ("go.mod", "go.sum"):
        (folder / stale).unlink(missing_ok=True)
    (folder / "main.go").write_bytes(source)
    env = {"GOFLAGS": "-mod=mod", "GO111MODULE": "on"}
    _run("go mod init", ["go", "mod", "init", "logdeck-interop"], folder, env)
    _run("go get", ["go", "get", f"{GO_MODULE}@{GO_VERSION}"], folder, env)
    _run("go build", ["go", "build", "-o", str(binary), "."], folder, env)
    marker.write_text(fingerprint)
    return binary


def install_python() -> Path:
    """fluent-logger for Python is a dependency of the project; check that it imports."""
    try:
        import fluent.sender  # noqa: F401
    except ImportError as error:
        raise InstallError(f"python fluent-logger: {error} (pip install -e '.[dev]')") from None
    return Path(sys.executable)


INSTALLERS: dict[str, Callable[[], Path]] = {
    "node": install_node,
    "fluency": install_fluency,
    "go": install_go,
    "python": install_python,
}


@dataclass(frozen=True, slots=True)
class Client:
    """One client in one mode: how to run it against a port and a file of records."""

    name: str
    mode: str
    installer: str
    sends: str
    """What goes on the wire: the Forward mode, its options and the time encodings."""

    @property
    def id(self) -> str:
        """A test id without the characters `pytest -k` trips over."""
        return re.sub(r"[^A-Za-z0-9+]+", "-", f"{self.name}-{self.mode}").strip("-")

    def command(
        self, installed: Path, port: int, records: Path
    ) -> tuple[list[str], dict[str, str]]:
        """The command line and extra environment that send `records` to `port`."""
        if self.installer == "node":
            library = self.name.removeprefix("node ")
            script = str(HERE / "node_client.js")
            args = ["node", script, library, self.mode, str(port), str(records)]
            return args, {"NODE_PATH": str(installed)}
        if self.installer == "fluency":
            classpath = f"{installed}/*"
            script = str(HERE / "FluencyClient.java")
            return ["java", "-cp", classpath, script, str(port), str(records)], {}
        if self.installer == "go":
            flags = {"sync": [], "async": ["-async"]}[self.mode.split("+")[0]]
            if self.mode.endswith("+EventTime"):
                flags.append("-subsecond")
            return [str(installed), *flags, "-port", str(port), "-records", str(records)], {}
        module = "tests.interop.python_client"
        return [str(installed), "-m", module, self.mode, str(port), str(records)], {}


CLIENTS: tuple[Client, ...] = (
    Client(
        "node fluent-logger",
        "Message",
        "node",
        "[tag, time, record, {chunk}]; time int seconds or EventTime",
    ),
    Client(
        "node fluent-logger",
        "PackedForward",
        "node",
        "[tag, bin, {chunk, size: bytes, compressed: 'text', eventEntryDataSize}]",
    ),
    Client(
        "node fluent-logger",
        "CompressedPackedForward",
        "node",
        "[tag, gzip bin, {chunk, size: bytes, compressed: 'gzip', eventEntryDataSize}]",
    ),
    Client(
        "node @fluent-org/logger",
        "Message",
        "node",
        "[tag, time, record, {chunk}]; time int seconds or EventTime",
    ),
    Client(
        "node @fluent-org/logger",
        "Forward",
        "node",
        "[tag, [[time, record], ...], {size: count, chunk}]",
    ),
    Client(
        "node @fluent-org/logger",
        "PackedForward",
        "node",
        "[tag, bin, {size: count, chunk}]",
    ),
    Client(
        "node @fluent-org/logger",
        "CompressedPackedForward",
        "node",
        "[tag, gzip bin, {size: count, chunk, compressed: 'gzip'}]",
    ),
    Client(
        "java fluency",
        "PackedForward",
        "fluency",
        "[tag, str (entries as a msgpack str), {size: bytes, chunk: UUID}]; int or EventTime",
    ),
    Client("go fluent-logger-golang", "sync", "go", "[tag, int time, record, {chunk}]"),
    Client(
        "go fluent-logger-golang",
        "async+EventTime",
        "go",
        "[tag, EventTime, record, {chunk}] from a background goroutine",
    ),
    Client(
        "python fluent-logger",
        "sender",
        "python",
        "[tag, time, record] without acks; time int seconds, float or nil",
    ),
    Client(
        "python fluent-logger",
        "asyncsender",
        "python",
        "[tag, EventTime, record] without acks, from a background thread",
    ),
)


def install_all(names: Sequence[str] = tuple(INSTALLERS)) -> dict[str, Path | InstallError]:
    """Install the named clients; each one's path, or the error that stopped it."""
    results: dict[str, Path | InstallError] = {}
    for name in names:
        try:
            results[name] = INSTALLERS[name]()
        except InstallError as error:
            results[name] = error
        except OSError as error:
            results[name] = InstallError(f"{name}: {error}")
    return results


def main() -> int:
    failed = {name: r for name, r in install_all().items() if isinstance(r, InstallError)}
    for name, error in failed.items():
        print(f"interop: could not install the {name} client: {error}", file=sys.stderr)
    if failed:
        print(f"interop: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
