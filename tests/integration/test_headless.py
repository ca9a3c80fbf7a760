"""`logdeck search` and `logdeck tail` as processes on each backend: logs sent with Python's
fluent-logger through the accumulator, stored by the indexer, printed for pipes."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from fluent import sender

from backend.config import Settings
from backend.schemas import iso_millis
from tests.integration.harness import (
    ROOT,
    Process,
    Stored,
    connection_flags,
    free_port,
    wait_until,
)
from tests.records import make_log

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _record(
    label: str, level: str, service: str, node: str, seconds_ago: int = 0, code: str = "PAY-500"
) -> dict[str, Any]:
    record = make_log(node, level, service_name=service, log_id=f"{label}-{os.urandom(4).hex()}")
    record["timestamp"] = iso_millis(NOW - timedelta(seconds=seconds_ago))
    if "error_details" in record:
        record["error_details"] = {"error_code": code, "error_message": f"{code} for {label}"}
    return record


def _send(settings: Settings, records: list[dict[str, Any]]) -> None:
    logger = sender.FluentSender("logdeck", host="127.0.0.1", port=settings.accumulator_port)
    try:
        for record in records:
            assert logger.emit("log", record), logger.last_error
    finally:
        logger.close()


def _logdeck(*args: str) -> list[str]:
    return [sys.executable, "-m", "launch", *args]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_logdeck(*args), cwd=ROOT, capture_output=True, text=True, timeout=120)


class Lines:
    """The lines a stream gives, read by a thread so that waiting for one is bounded."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))

    def next(self, within: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=within)
        except queue.Empty:
            raise AssertionError(f"no line within {within:.0f} s: waiting for {what}") from None
        self.seen.append(line)
        return line


class Tail:
    """`logdeck tail` as a process: its stdout and stderr each read line by line."""

    def __init__(self, settings: Settings, *args: str) -> None:
        self.popen = subprocess.Popen(
            _logdeck("tail", *args, *connection_flags(settings)),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self.stdout = Lines(self.popen.stdout)
        self.stderr = Lines(self.popen.stderr)

    def wait_following(self) -> None:
        line = self.stderr.next(60, "the tail to follow the logs topic")
        assert line.startswith("logdeck tail: following "), line

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    started: list[Tail] = []
    yield started
    for tail in started:
        tail.stop()


def test_search_prints_the_matching_stored_logs_newest_first_as_the_seed_shaped_them(
    settings: Settings, accumulator: Process, indexer: Process, stored: Stored
) -> None:
    wanted = [
        _record("pay-error-new", "ERROR", "PaymentService", "payment-01", 1),
        _record("payout-error", "ERROR", "PayoutService", "payout-01", 2),
        _record("pay-error-old", "ERROR", "PaymentService", "payment-02", 3, code="PAY-502"),
    ]
    others = [
        _record("pay-fatal", "FATAL", "PaymentService", "payment-01", 4),
        _record("pay-info", "INFO", "PaymentService", "payment-01", 5),
        _record("order-error", "ERROR", "OrderService", "order-01", 6),
        _record("lower-case", "ERROR", "paymentService", "payment-03", 7),
    ]
    _send(settings, [*others, *wanted])
    total = len(wanted) + len(others)
    wait_until(lambda: stored.logs()[0] >= total, 90, f"{total} logs in the store")

    found = _run("search", "level:ERROR service:Pay*", "--json", *connection_flags(settings))
    assert (found.returncode, found.stderr) == (0, "")
    assert [json.loads(line) for line in found.stdout.splitlines()] == wanted

    limited = _run("search", "level:error", "--limit", "2", *connection_flags(settings))
    assert limited.returncode == 0, limited.stderr
    lines = limited.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{wanted[0]['timestamp']} ERROR PaymentService payment-01 ")
    assert lines[0].endswith(" code=PAY-500")

    since = iso_millis(NOW - timedelta(seconds=2))
    recent = _run(
        "search", "--since", since, "--json", *connection_flags(settings), "--", "-code:PAY-502"
    )
    assert recent.returncode == 0, recent.stderr
    assert [json.loads(line)["log_id"] for line in recent.stdout.splitlines()] == [
        wanted[0]["log_id"],
        wanted[1]["log_id"],
    ]
    until_old = _run("search", "--until", "now-1h", *connection_flags(settings))
    assert (until_old.returncode, until_old.stdout) == (0, "")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["foo:1"], "unknown field 'foo' in 'foo:1'"),
        (["response_time_ms>abc"], "'abc' is not a number"),
        (['"unclosed'], "unclosed quote"),
        (["level:ERROR", "--since", "yesterday"], "cannot read the time 'yesterday'"),
        (["--since", "now", "--until", "1h"], "--since now is after --until 1h"),
    ],
)
def test_search_refuses_a_bad_expression_or_time_with_exit_2(
    settings: Settings, args: list[str], said: str
) -> None:
    refused = _run("search", *args, *connection_flags(settings))
    assert refused.returncode == 2
    assert refused.stderr.startswith("logdeck search: ")
    assert said in refused.stderr
    assert refused.stdout == ""


def test_search_and_tail_say_when_their_store_or_bus_cannot_be_reached(
    settings: Settings, tmp_path: Path
) -> None:
    if settings.embedded is None:
        away = ["--kafka", f"127.0.0.1:{free_port()}", "--elasticsearch"]
        away.append(f"http://127.0.0.1:{free_port()}")
    else:
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        away = ["--embedded", str(blocked / "data")]
    for command, what in (("search", "search"), ("tail", "tail")):
        failed = _run(command, "level:ERROR", *away)
        assert failed.returncode == 1, failed.stderr
        assert failed.stderr.startswith(f"logdeck {what}: ")
        assert "Traceback" not in failed.stderr


def test_tail_prints_only_the_matching_live_logs_and_ends_with_0_on_sigterm(
    settings: Settings, accumulator: Process, tails: list[Tail]
) -> None:
    tail = Tail(settings, "code:PAY-500", "--json")
    tails.append(tail)
    tail.wait_following()
    # Each node's records share a partition, in order: once its last (matching) record is
    # printed, the tail has read every record of that node before it.
    by_node = {
        node: [
            _record(f"{node}-info", "INFO", "PaymentService", node),
            _record(f"{node}-502", "ERROR", "PaymentService", node, code="PAY-502"),
            _record(f"{node}-500", "ERROR", "PaymentService", node),
            _record(f"{node}-warn", "WARN", "PaymentService", node),
            _record(f"{node}-fatal", "FATAL", "PayoutService", node),
        ]
        for node in ("payment-01", "payout-01")
    }
    _send(settings, [record for records in by_node.values() for record in records])
    expected = {
        record["log_id"]: record
        for records in by_node.values()
        for record in records
        if record.get("error_details", {}).get("error_code") == "PAY-500"
    }
    printed = [json.loads(tail.stdout.next(60, "a PAY-500 log")) for _ in expected]
    assert {log["log_id"]: log for log in printed} == expected

    tail.popen.send_signal(signal.SIGTERM)
    assert tail.popen.wait(30) == 0


def test_tail_ends_with_0_when_the_reader_of_its_output_goes_away(
    settings: Settings, accumulator: Process, tmp_path: Path
) -> None:
    errors = tmp_path / "tail.err"
    errors.write_text("")
    command = shlex.join(_logdeck("tail", "level:ERROR", "--json", *connection_flags(settings)))
    pipeline = subprocess.Popen(
        ["bash", "-c", f"{command} 2>{errors} | head -1; echo exit=${{PIPESTATUS[0]}}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: "following" in errors.read_text(), 60, "the tail to follow")
        first = _record("first", "ERROR", "PaymentService", "payment-01")
        _send(settings, [first, _record("second", "ERROR", "PaymentService", "payment-01")])
        out, _ = pipeline.communicate(timeout=60)
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
    line, status = out.splitlines()
    assert (json.loads(line), status) == (first, "exit=0")
    assert "Error" not in errors.read_text()
