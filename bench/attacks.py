"""What a hostile client costs the others: a good client's acks, and the accumulator's RSS.

Each phase starts a fresh `logdeck accumulator` (a subprocess, on the embedded backend
unless `--kafka`), lets a good client send a chunk of 50 logs and wait for its ack every
50 ms from its own process's event loop, and runs one attack beside it from a process of
its own, so the attack's work never delays the good client's clock. The first phase runs
no attack: it is the baseline the others are read against, measured in the same run.

Attacks (sizes in ATTACKS): amplification, connections sending again and again a
2,944-byte CompressedPackedForward frame whose gzip holds 1,000,000 `[0, {}]` entries;
slow loris, connections writing a frame one byte a second (each byte used to restart the
idle timeout); deaf client, connections sending chunks with 128 KiB chunk ids and never
reading their acks; partial frames + RST, connections writing the first bytes of a frame
and resetting, one after another; big frames, connections all sending a 16 MiB frame at
once.

Figures per phase: the good client's slowest ack (target < 1 s) and its median, and the
accumulator's RSS before the attack, at its peak and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import multiprocessing
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack

from backend.config import Settings
from backend.schemas import now_iso
from bench.common import (
    Accumulator,
    BenchError,
    bench_parser,
    bench_settings,
    memory_kib,
    percentile,
    render_table,
    run_and_record,
    verdict,
)
from bench.machine import announce, stack_machine, timestamp
from bench.servers import drop_topics

TARGET_MAX_ACK_S = 1.0
GOOD_CHUNK = 50
GOOD_EVERY_S = 0.05
ATTACKER = "127.0.0.2"
"""Attacks come from an address of their own (all of 127.0.0.0/8 is this host)."""


def rss_mib(pid: int) -> float:
    return memory_kib("VmRSS", pid) / 1024


# The attacks, each run in a process of its own until terminated ----------------------------


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket()
    sock.bind((ATTACKER, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


def amplification_frame(chunk: str) -> bytes:
    blob = gzip.compress(b"\x92\x00\x80" * 1_000_000, compresslevel=9)
    frame: bytes = msgpack.packb(["logdeck.log", blob, {"compressed": "gzip", "chunk": chunk}])
    return frame


def _heartbeat_frame(chunk: str) -> bytes:
    record = {"node_id": "attacker", "message_type": "HEARTBEAT", "status": "UP"}
    frame: bytes = msgpack.packb(["logdeck.heartbeat", 1, record, {"chunk": chunk}])
    return frame


async def _amplification(port: int, connections: int) -> None:
    frame = amplification_frame("bomb")

    async def loop() -> None:
        reader, writer = await _connect(port)
        while True:
            writer.write(frame)
            await reader.read(100)  # its ack, once its letters are safe

    await asyncio.gather(*(loop() for _ in range(connections)))


async def _slow_loris(port: int, connections: int) -> None:
    frame = _heartbeat_frame("loris")

    async def loop() -> None:
        while True:
            with contextlib.suppress(ConnectionError):
                _, writer = await _connect(port)
                for byte in range(len(frame) - 1):
                    writer.write(frame[byte : byte + 1])
                    await asyncio.sleep(1.0)
            await asyncio.sleep(1.0)  # cut off: come back, as an attacker would

    await asyncio.gather(*(loop() for _ in range(connections)))


async def _deaf(port: int, connections: int) -> None:
    async def loop(number: int) -> None:
        while True:
            with contextlib.suppress(ConnectionError, OSError):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.bind((ATTACKER, 0))
                sock.setblocking(False)
                await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
                _, writer = await asyncio.open_connection(sock=sock)
                for chunk in range(1_000_000):
                    writer.write(_heartbeat_frame(f"{'c' * 128 * 1024}{number}-{chunk}"))
                    await writer.drain()
            await asyncio.sleep(0.5)

    await asyncio.gather(*(loop(number) for number in range(connections)))


async def _resets(port: int, total: int, at_once: int = 250) -> None:
    partial = _heartbeat_frame("reset")[:20]
    linger = struct.pack("ii", 1, 0)  # close() sends RST

    async def one() -> None:
        with contextlib.suppress(OSError):
            _, writer = await _connect(port)
            writer.write(partial)
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            writer.transport.abort()

    for start in range(0, total, at_once):
        await asyncio.gather(*(one() for _ in range(min(at_once, total - start))))
    await asyncio.sleep(3600)  # done: stay until terminated


async def _big_frames(port: int, connections: int) -> None:
    pad = "x" * (16 * 1024 * 1024 - 200)
    frame = memoryview(msgpack.packb(["logdeck.log", 1, {"node_id": "attacker", "pad": pad}]))

    async def one() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            _, writer = await _connect(port)
            for start in range(0, len(frame), 256 * 1024):
                writer.write(frame[start : start + 256 * 1024])
                await writer.drain()

    await asyncio.gather(*(one() for _ in range(connections)))
    await asyncio.sleep(3600)


ATTACKS: dict[str, tuple[Callable[[int, int], Awaitable[None]], int, str]] = {
    "amplification": (_amplification, 4, "4 connections, 1,000,000-entry gzip frames"),
    "slow loris": (_slow_loris, 1000, "1,000 connections, 1 byte/s"),
    "deaf client": (_deaf, 50, "50 connections never reading acks of 128 KiB"),
    "partial frames + RST": (_resets, 17_000, "17,000 connections: 20 bytes, then RST"),
    "big frames": (_big_frames, 2000, "2,000 connections x 16 MiB frames at once"),
}


def attack_process(name: str, port: int, size: int) -> None:
    """The entry point of an attack's process."""
    attack = ATTACKS[name][0]
    asyncio.run(attack(port, size))  # type: ignore[arg-type]


# The good client and the RSS watch ----------------------------------------------------------


def good_logs(count: int, round_: int) -> list[tuple[int, dict[str, Any]]]:
    now = now_iso()
    return [
        (
            int(time.time()),
            {
                "log_id": f"good-{round_}-{n}",
                "node_id": "good-01",
                "log_level": "INFO",
                "message_type": "LOG",
                "message": "a good client's log",
                "service_name": "GoodService",
                "timestamp": now,
            },
        )
        for n in range(count)
    ]


async def good_client(port: int, seconds: float) -> list[float]:
    """Sends a chunk and waits for its ack every GOOD_EVERY_S; the ack latencies in s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    try:
        for round_ in range(int(seconds / GOOD_EVERY_S) + 1):
            if time.monotonic() >= deadline:
                break
            chunk = f"good-{round_}"
            entries = b"".join(msgpack.packb(e) for e in good_logs(GOOD_CHUNK, round_))
            frame = msgpack.packb(["logdeck.log", entries, {"chunk": chunk, "size": GOOD_CHUNK}])
            started = time.perf_counter()
            writer.write(frame)
            answer = await asyncio.wait_for(reader.read(100), 60)
            latencies.append(time.perf_counter() - started)
            if msgpack.unpackb(answer) != {"ack": chunk}:
                raise BenchError(f"the good client got {answer!r} for {chunk}")
            await asyncio.sleep(GOOD_EVERY_S)
    finally:
        writer.close()
    return latencies


class RssWatch:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_mib(pid)
        self.peak = self.before

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mib(self.pid))
            await asyncio.sleep(0.1)


async def phase(
    name: str | None, settings: Settings, workdir: Path, seconds: float, flags: list[str]
) -> dict[str, Any]:
    label = name or "baseline"
    with Accumulator(
        settings, workdir / f"accumulator-{label.replace(' ', '-')}.log", flags
    ) as accumulator:
        await accumulator.listening()
        port = accumulator.port
        await asyncio.sleep(1.0)  # settled after start
        watch = RssWatch(accumulator.pid)
        attacker = None
        if name is not None:
            attacker = multiprocessing.get_context("spawn").Process(
                target=attack_process, args=(name, port, ATTACKS[name][1]), daemon=True
            )
            attacker.start()
            await asyncio.sleep(2.0)  # the attack under way
        sampling = asyncio.create_task(watch.run())
        try:
            latencies = await good_client(port, seconds)
        finally:
            sampling.cancel()
            if attacker is not None:
                attacker.terminate()
                attacker.join(10)
        accumulator.check_running()
        end = rss_mib(accumulator.pid)
        log = accumulator.log_path.read_text(errors="replace")
    ordered = sorted(latencies)
    acks = {
        "p50": statistics.median(ordered) * 1000,
        "p99": percentile(ordered, 0.99) * 1000,
        "max": ordered[-1] * 1000,
    }
    hits = sorted({flag for flag in _FLAGS if f"({flag})" in log})
    print(
        f"  {label:<22} good ack p50 {acks['p50']:7.1f} ms, max {acks['max']:7.1f} ms; RSS "
        f"{watch.before:.0f} -> {watch.peak:.0f} -> {end:.0f} MiB; limits hit: "
        f"{', '.join(hits) or '-'}"
    )
    return {
        "attack": ATTACKS[name][2] if name else "none",
        "good_acks": len(ordered),
        "good_ack_ms": acks,
        "rss_mib": {"before": watch.before, "peak": watch.peak, "end": end},
        "limits_hit": hits,
    }


_FLAGS = (
    "--max-frame-bytes",
    "--max-frame-entries",
    "--max-frame-dead-letters",
    "--max-connections",
    "--max-connections-per-peer",
    "--idle-timeout",
    "--frame-timeout",
    "--write-timeout",
    "--max-buffered-bytes",
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("attacks")
    with tempfile.TemporaryDirectory(prefix="logdeck-bench-attacks-") as folder:
        if not args.kafka:
            settings = Settings(embedded=Path(folder) / "data", namespace=settings.namespace)
        backend = settings.bus_label
        info = stack_machine("not used" if not args.kafka else "-")
        code = await announce(
            f"logdeck attacks benchmark on {backend}: {args.seconds:g} s a phase, "
            f"{info['nproc']} CPUs",
            info,
        )
        phases: dict[str, Any] = {}
        for name in [None, *args.attacks]:
            phases[name or "baseline"] = await phase(
                name, settings, Path(folder), args.seconds, args.flags
            )
    if args.kafka:
        await drop_topics(settings)
    rows = [
        [
            label,
            figures["attack"],
            f"{figures['good_ack_ms']['p50']:,.1f} ms",
            f"{figures['good_ack_ms']['max']:,.1f} ms",
            f"< {TARGET_MAX_ACK_S * 1000:,.0f} ms",
            verdict(figures["good_ack_ms"]["max"] < TARGET_MAX_ACK_S * 1000),
            f"{figures['rss_mib']['before']:,.0f} / {figures['rss_mib']['peak']:,.0f} / "
            f"{figures['rss_mib']['end']:,.0f}",
        ]
        for label, figures in phases.items()
    ]
    header = ["phase", "attack", "ack p50", "ack max", "target", "met?", "RSS MiB start/peak/end"]
    print()
    print(render_table(header, rows))
    return {
        "benchmark": "attacks",
        "timestamp": timestamp(),
        "backend": backend,
        "namespace": settings.namespace,
        "machine": info,
        "code": code,
        "settings": {
            "seconds_per_phase": args.seconds,
            "good_chunk": GOOD_CHUNK,
            "good_every_s": GOOD_EVERY_S,
            "accumulator_flags": args.flags,
            "target_max_ack_s": TARGET_MAX_ACK_S,
        },
        "phases": phases,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "attacks", "A good client's acks and the accumulator's RSS while each attack runs."
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase (%(default)s)")
    parser.add_argument(
        "--attacks", nargs="+", choices=list(ATTACKS), default=list(ATTACKS), help="which"
    )
    parser.add_argument(
        "--kafka", action="store_true", help="on the Kafka of LOGDECK_KAFKA, not embedded"
    )
    parser.add_argument(
        "--flag",
        dest="flags",
        action="append",
        default=[],
        help="an extra accumulator flag (repeat: --flag=--max-buffered-bytes --flag=1000)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
