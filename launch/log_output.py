"""Logs printed for pipes and people: one per line, readable or JSON with the log's own fields.

A reader that goes away (`logdeck tail | head -3`) is how a pipe ends, not an error: writing
stops, stdout is pointed at /dev/null so the interpreter's last flush is quiet too, and the
command exits 0. A tail also notices a reader gone while no log matches, by polling stdout.
"""

from __future__ import annotations

import os
import select
import stat
from collections.abc import Sequence
from typing import BinaryIO, Final

import msgspec

from backend.logfilter.terms import number_text
from backend.schemas import Log

_CONTROLS: Final = {code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0))}
"""Control characters as escapes: a log's text must not move the cursor or end its line."""
_encode: Final = msgspec.json.Encoder().encode


def readable(log: Log) -> str:
    """Time, level, service, node, message, then the error code and timings it has."""
    parts = [log.timestamp, f"{log.log_level:<5}", log.service_name, log.node_id, log.message]
    if log.error_details is not None:
        parts.append(f"code={log.error_details.error_code}")
    if log.response_time_ms is not None:
        parts.append(f"response_time_ms={number_text(log.response_time_ms)}")
    if log.threshold_limit_ms is not None:
        parts.append(f"threshold_limit_ms={number_text(log.threshold_limit_ms)}")
    return " ".join(parts).translate(_CONTROLS)


class LogOutput:
    """Writes logs to a byte stream (stdout) until its reader goes away."""

    def __init__(self, stream: BinaryIO, *, as_json: bool) -> None:
        self._stream = stream
        self._as_json = as_json
        self.closed = False
        mode = os.fstat(stream.fileno()).st_mode
        self._pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)

    def write(self, logs: Sequence[Log]) -> bool:
        """Print `logs`, one per line; False once the reader has gone."""
        if self.closed:
            return False
        if self._as_json:
            data = b"".join(_encode(log) + b"\n" for log in logs)
        else:
            data = "".join(readable(log) + "\n" for log in logs).encode("utf-8", "replace")
        try:
            self._stream.write(data)
            self._stream.flush()
        except BrokenPipeError:
            self._close()
        return not self.closed

    def reader_gone(self) -> bool:
        """Whether the pipe's reader has closed it, without writing to it."""
        if not self._pipe or self.closed:
            return self.closed
        poller = select.poll()
        poller.register(self._stream.fileno(), 0)  # errors and hang-ups are always reported
        if any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0)):
            self._close()
        return self.closed

    def _close(self) -> None:
        self.closed = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
