"""`logdeck simulate`: a fleet of simulated nodes against an accumulator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from backend.security import ForwardSecurity
from simulators.fleet import Fleet, plan
from simulators.options import NodeOptions, add_node_options, check_sender_security


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of `logdeck simulate`."""
    parser.description = (
        "Simulated microservice nodes, one process each: they register, heartbeat and log "
        "through the Forward protocol. Each node prints a summary line when it ends."
    )
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--nodes", type=_count, default=3, help="number of nodes (%(default)s)")
    fleet.add_argument(
        "--node-prefix",
        default="",
        metavar="PREFIX",
        help="prefix of every node_id, e.g. t1a2- gives t1a2-payment-01",
    )
    fleet.add_argument(
        "--fault-nodes",
        type=int,
        metavar="K",
        help="apply the fault flags to the first K nodes only (default: all)",
    )
    add_node_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run the fleet to its end; the exit code says whether every node ended as expected."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = NodeOptions.from_args(args)
    # Before any node starts: each would stop on it (`open_sender`), one by one.
    check_sender_security(options, ForwardSecurity.from_env())
    specs = plan(args.nodes, options, args.node_prefix, args.fault_nodes)
    return asyncio.run(Fleet(specs, show_progress=sys.stdout.isatty()).run())
