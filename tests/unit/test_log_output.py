"""How `tail` and `search` print logs: readable lines, JSON with the log's own fields, and a
quiet end when the reader of a pipe goes away."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from backend.schemas import Log, validate_record
from launch.log_output import LogOutput, readable
from tests.records import make_log


def _log(level: str, **overrides: Any) -> Log:
    record = make_log("payment-01", level, service_name="PaymentService", **overrides)
    record["timestamp"] = "2026-11-24T10:15:30.123Z"
    log = validate_record(record)
    assert isinstance(log, Log)
    return log


ERROR = _log("ERROR", message="card declined")
WARN = _log("WARN", message="slow", response_time_ms=1500.0, threshold_limit_ms=1000.5)


def test_a_readable_line_has_time_level_service_node_message_then_code_and_timings() -> None:
    assert readable(ERROR) == (
        "2026-11-24T10:15:30.123Z ERROR PaymentService payment-01 card declined code=TST-500"
    )
    assert readable(WARN) == (
        "2026-11-24T10:15:30.123Z WARN  PaymentService payment-01 slow "
        "response_time_ms=1500 threshold_limit_ms=1000.5"
    )


def test_control_characters_are_escaped_so_each_log_stays_on_its_line() -> None:
    line = readable(_log("INFO", message="a\nb\x1b[31mc\x9bd\te"))
    assert "a\\nb\\x1b[31mc\\x9bd\\te" in line
    assert line.isprintable()


class Pipe:
    """An OS pipe: its write end as a stdout would be, its read end closed at most once."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        self.reader: int | None = read_end
        self.writer = os.fdopen(write_end, "wb")

    def read(self) -> bytes:
        assert self.reader is not None
        return os.read(self.reader, 65536)

    def close_reader(self) -> None:
        if self.reader is not None:
            os.close(self.reader)
            self.reader = None


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    opened = Pipe()
    yield opened
    opened.writer.close()
    opened.close_reader()


def test_json_lines_hold_exactly_the_logs_fields(pipe: Pipe) -> None:
    assert LogOutput(pipe.writer, as_json=True).write([ERROR, WARN])
    first, second = pipe.read().decode().splitlines()
    assert set(json.loads(first)) == {
        "log_id",
        "node_id",
        "log_level",
        "message_type",
        "message",
        "service_name",
        "timestamp",
        "error_details",
    }
    assert json.loads(second)["response_time_ms"] == 1500.0
    assert json.loads(second)["message_type"] == "LOG"


def test_a_reader_gone_ends_the_output_quietly(pipe: Pipe) -> None:
    output = LogOutput(pipe.writer, as_json=False)
    assert not output.reader_gone()
    pipe.close_reader()
    assert output.reader_gone()
    assert not output.write([ERROR])


def test_a_write_to_a_closed_pipe_ends_the_output_quietly(pipe: Pipe) -> None:
    output = LogOutput(pipe.writer, as_json=True)
    pipe.close_reader()
    assert not output.write([ERROR])
    assert output.closed
    pipe.writer.write(b"anything")
    pipe.writer.flush()  # stdout now leads to /dev/null: the last flush at exit is quiet too
