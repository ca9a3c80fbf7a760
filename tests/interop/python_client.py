"""Sends the records of a JSON file ([[tag, record], ...]) with Python's fluent-logger.

    python -m tests.interop.python_client <sender|asyncsender> <port> <records.json>

fluent-logger asks for no acks (Message mode), so this exits 0 once every emit succeeded
and the sender closed with nothing given up. `sender` sends whole seconds for even
records, and through `emit_with_time` a float time or (every fourth record) a nil one;
`asyncsender` runs with `nanosecond_precision`, so every time is an EventTime.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from fluent import asyncsender, sender


def send(kind: str, port: int, records: list[tuple[str, dict[str, object]]]) -> None:
    """Emit every record and close; raise if fluent-logger could not send one."""
    lost: list[bytes] = []  # what fluent-logger gave up on (its buffer overflow handler)
    if kind == "sender":
        fluent: sender.FluentSender = sender.FluentSender(
            "", port=port, timeout=10, buffer_overflow_handler=lost.append
        )
    elif kind == "asyncsender":
        fluent = asyncsender.FluentSender(
            "",
            port=port,
            timeout=10,
            nanosecond_precision=True,
            buffer_overflow_handler=lost.append,
        )
    else:
        raise SystemExit(f"python client: unknown sender {kind!r}")
    try:
        for index, (tag, record) in enumerate(records):
            if kind == "sender" and index % 2 == 1:
                at = None if index % 4 == 3 else time.time()
                sent = fluent.emit_with_time(tag, at, record)
            else:
                sent = fluent.emit(tag, record)
            if not sent:
                raise RuntimeError(f"emit failed: {fluent.last_error}")
    finally:
        fluent.close()
    if lost:
        raise RuntimeError(f"{sum(map(len, lost))} bytes could not be sent")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    kind, port, path = argv
    records = json.loads(Path(path).read_text())
    try:
        send(kind, int(port), [(tag, record) for tag, record in records])
    except (OSError, RuntimeError) as error:
        print(f"python client: {kind}: {error}", file=sys.stderr)
        return 1
    print(f"python client: {kind}: {len(records)} records sent")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
