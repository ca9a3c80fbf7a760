"""`python -m bench`: every benchmark in turn, then one table and a chart of them all.

`--summary` skips the runs and summarizes the results already in bench/results/. Each
benchmark keeps its own results file; the summary goes to summary.json and summary.png.
Some run only on request (`ON_REQUEST`): the volume run (10 million logs, about half an
hour of both cores; `--volume` adds it to the others), the cluster's faults (they need
`logdeck stack up --cluster`) and the Kafka restart (it kills the stack's broker); `--only
NAME` runs one alone. Their last results are summarized either way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence

from bench.common import RESULTS, render_table
from bench.summary import READERS, chart, collect, table, to_json

ON_REQUEST = {
    "volume": "10 million logs, about 30 min: --volume, or --only volume",
    "failover": "on the cluster of `logdeck stack up --cluster`: --only failover",
    "restart": "kills and restarts the stack's Kafka: --only restart",
}
"""Benchmarks not for every run, and how to ask for each."""


def run_all(names: Sequence[str]) -> list[str]:
    """Run each benchmark as its own process; the names of those that failed."""
    failed = []
    for index, name in enumerate(names, 1):
        print(f"\n[{index}/{len(names)}] python -m bench.{name}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, "-m", f"bench.{name}"]).returncode
        print(
            f"[{index}/{len(names)}] {name}: exit {code} after {time.monotonic() - started:.0f} s"
        )
        if code != 0:
            failed.append(name)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--summary", action="store_true", help="only summarize the results already there"
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(READERS), help="run these benchmarks only"
    )
    parser.add_argument(
        "--volume",
        action="store_true",
        help="also the volume run: 10 million logs through the real stack, about 30 min",
    )
    args = parser.parse_args(argv)
    wanted = {"volume"} if args.volume else set()
    names = args.only or [name for name in READERS if name not in ON_REQUEST or name in wanted]
    failed = [] if args.summary else run_all(names)
    skipped = [name for name in ON_REQUEST if name not in names]
    if skipped and not args.summary:
        print("\nnot run (on request only):")
        for name in skipped:
            print(f"  {name}: {ON_REQUEST[name]}")
    rows, missing = collect()
    print()
    print(render_table(["figure", "value", "baseline", "ratio", "target", "met?"], table(rows)))
    if missing:
        print(
            f"\nno results yet: {', '.join(missing)} (python -m bench --only {' '.join(missing)})"
        )
    (RESULTS / "summary.json").write_text(json.dumps(to_json(rows, missing), indent=2) + "\n")
    chart(rows, RESULTS / "summary.png")
    print(f"\nsummary written to {RESULTS / 'summary.json'} and {RESULTS / 'summary.png'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
