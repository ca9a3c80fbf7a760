"""How a connection's remote end is named: in full in the logs, by host for the limits."""

from __future__ import annotations

import asyncio


def peer_of(writer: asyncio.StreamWriter) -> str:
    """`host:port`, so the log lines of one connection can be told from another's."""
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


def host_of(writer: asyncio.StreamWriter) -> str:
    """The host alone: what `--max-connections-per-peer` counts by."""
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)
