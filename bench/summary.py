"""One table of every benchmark's headline figures, each beside its baseline, and a chart.

Reads the results files the benchmarks wrote in bench/results/ (it measures nothing
itself), so the table always shows the last run of each. A benchmark that has not been
run yet is listed as missing rather than left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = "-"
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


def _ingest(data: dict[str, Any]) -> list[Row]:
    rows = []
    for figure in data["figures"]:
        name = figure["figure"].strip()
        if "CPU" in name:
            continue
        rows.append(
            Row(
                "ingest",
                name,
                figure["value"],
                figure["unit"],
                figure["baseline"],
                _ingest_baseline(name),
                "; ".join(target["target"] for target in figure["targets"]) or "-",
                figure["met"],
            )
        )
    return rows


def _ingest_baseline(figure: str) -> str:
    if "kcat" in figure:
        return "kcat -P"
    return "direct aiokafka" if "accumulator" in figure else "plain _bulk"


def _alerts(data: dict[str, Any]) -> list[Row]:
    rows = []
    for figure in data["figures"]:
        if figure["figure"].startswith("ERROR -> alert p"):
            value = float(figure["value"].split()[0])
            rows.append(
                Row(
                    "alerts",
                    figure["figure"],
                    value,
                    "ms",
                    None,
                    "",
                    figure["target"],
                    figure.get("met"),
                )
            )
    return rows


def _notify(data: dict[str, Any]) -> list[Row]:
    rows = []
    for figure in data["figures"]:
        if figure["figure"].startswith("FATAL -> webhook p"):
            rows.append(
                Row(
                    "notify",
                    figure["figure"],
                    float(figure["value"].split()[0]),
                    "ms",
                    float(figure["baseline"].split()[0]),
                    "alert on the bus",
                    figure["target"],
                    figure.get("met"),
                )
            )
    return rows


def _detection(data: dict[str, Any]) -> list[Row]:
    detection, targets = data["detection_s"], data["targets"]
    return [
        Row("detection", "SIGKILL -> NODE_DOWN, median", detection["median"], "s"),
        Row(
            "detection",
            "SIGKILL -> NODE_DOWN, max",
            detection["max"],
            "s",
            target=f"<= {targets['detection_max_s']:g} s",
            met=data["met"]["detection"],
        ),
        Row(
            "detection",
            f"false NODE_DOWN ({data['settings'].get('soak_s', '?')} s soak)",
            data["false_alarms"]["total"],
            "",
            target="0",
            met=data["met"]["false_alarms"],
        ),
    ]


def _console(data: dict[str, Any]) -> list[Row]:
    """Key -> repaint p95 with the field filter and highlight on, beside the same keys
    with the level filter alone."""
    figures = {figure["figure"]: figure for figure in data["figures"]}
    measured, alone = figures["key -> repaint p95"], figures["key -> repaint p95, level only"]
    return [
        Row(
            "console",
            f"key -> repaint p95 at {int(rate):,} logs/s, highlight + field filter",
            float(value.split()[0]),
            "ms",
            float(alone["values"][rate].split()[0]),
            "level filter only",
            measured["target"],
            measured["met"][rate],
        )
        for rate, value in measured["values"].items()
    ]


def _history(data: dict[str, Any]) -> list[Row]:
    """A new console's history on screen, p50 and p95 per store, beside the bare query."""
    return [
        Row(
            "history",
            figure["figure"],
            figure["value_ms"],
            "ms",
            figure["baseline_ms"],
            figure["baseline"],
            figure["target"],
            figure["met"],
        )
        for figure in data["figures"]
        if " max," not in figure["figure"]
    ]


def _search(data: dict[str, Any]) -> list[Row]:
    ingest = data["ingest"]
    worst = max(data["queries"].items(), key=lambda item: item[1]["embedded"]["p95_ms"])
    name, query = worst
    elastic = query.get("elasticsearch") or {}
    return [
        Row(
            "search",
            f"embedded store ingest, {data['logs']:,} logs",
            ingest["embedded"]["logs_per_second"],
            "logs/s",
            (ingest.get("elasticsearch") or {}).get("logs_per_second"),
            "Elasticsearch",
            data["targets"]["ingest"]["target"],
            data["targets"]["ingest"]["met"],
        ),
        Row(
            "search",
            f"slowest search p95 ({name})",
            query["embedded"]["p95_ms"],
            "ms",
            elastic.get("p95_ms"),
            "Elasticsearch",
            data["targets"]["search_p95"]["target"],
            data["targets"]["search_p95"]["met"],
        ),
    ]


def _embedded(data: dict[str, Any]) -> list[Row]:
    ready = sorted(data["demo_ready_s"])
    helps = sorted(data["cli_help_s"])
    return [
        Row(
            "embedded",
            "end to end, Forward -> store",
            data["end_to_end"]["rate"],
            "logs/s",
            data["sqlite_fts5_ceiling"]["rate"],
            "FTS5 batched inserts",
            ">= 30,000",
            data["end_to_end"]["rate"] >= 30_000,
        ),
        Row(
            "embedded",
            "demo: first log line on screen",
            ready[len(ready) // 2],
            "s",
            helps[len(helps) // 2],
            "logdeck --help",
            "<= 3 s",
            ready[-1] <= 3.0,
        ),
    ]


def _latency(data: dict[str, Any]) -> list[Row]:
    measured = data["latency_ms"]
    alone = measured["elasticsearch_alone"]
    target = data.get("target", {})
    rows = []
    for rate, figures in measured.items():
        if rate == "elasticsearch_alone":
            continue
        for share in ("p50", "p99"):
            aimed = share == "p99" and int(rate) == target.get("rate")
            rows.append(
                Row(
                    "latency",
                    f"service -> searchable {share} at {int(rate):,} logs/s",
                    figures[share],
                    "ms",
                    alone[share],
                    "Elasticsearch alone",
                    f"< {target['p99_ms']:,.0f} ms" if aimed else "-",
                    figures[share] < target["p99_ms"] if aimed else None,
                )
            )
    return rows


def _volume(data: dict[str, Any]) -> list[Row]:
    """Disk per million logs, the end-to-end rate and the searches, as the run wrote them.

    A figure without a value (Kafka's disk when the broker's log dir is on another machine)
    is left out.
    """
    return [
        Row(
            "volume",
            figure["figure"],
            figure["value"],
            figure["unit"],
            figure["baseline"],
            figure["baseline_name"],
            "; ".join(target["target"] for target in figure["targets"]) or "-",
            figure["met"],
        )
        for figure in data["figures"]
        if figure["value"] is not None
    ]


def _backlog(data: dict[str, Any]) -> list[Row]:
    """The indexer's peak memory on the backlog of large logs, beside the same count of
    small ones, with the poll's byte budget and without it."""
    runs = data["runs"]
    small = {run["backend"]: run["peak_rss_mib"] for run in runs if run["message_bytes"] < 1024}
    megabytes = data["message_bytes"] / (1024 * 1024)
    return [
        Row(
            "backlog",
            f"indexer peak RSS, {run['backend']}, {data['logs']} x {megabytes:g} MB logs"
            + ("" if run["poll_bytes"] == data["default_poll_bytes"] else ", no byte budget"),
            run["peak_rss_mib"],
            "MiB",
            small[run["backend"]],
            f"{data['logs']} small logs",
        )
        for run in runs
        if run["message_bytes"] >= 1024
    ]


def _failover(data: dict[str, Any]) -> list[Row]:
    """The cluster's faults: how long acknowledgements paused beside the no-fault gap, and
    the acknowledged logs lost or stored twice in each phase."""
    phases = data["phases"]
    calm = phases["baseline"]["ack_gap_s"]["max"]
    broker, rolling = phases["broker"], phases["rolling"]
    resumed = broker["acks_resumed_after_s"]
    rows = [
        Row(
            "failover",
            f"broker killed ({broker['killed']}): acks resume after",
            resumed,
            "s",
            calm,
            "longest ack gap, no fault",
            "< 10 s",
            resumed < 10,
        ),
        Row(
            "failover",
            "rolling restart of 3 brokers: longest ack pause",
            rolling["ack_pause_s"],
            "s",
            calm,
            "longest ack gap, no fault",
            "-",
            None,
        ),
    ]
    for name, phase in phases.items():
        wrong = phase["lost"] + phase["duplicated"]
        rows.append(
            Row(
                "failover",
                f"{name}: acknowledged logs lost or twice, of {phase['acked']:,}",
                wrong,
                "",
                None,
                "",
                "0",
                wrong == 0,
            )
        )
    return rows


def _restart(data: dict[str, Any]) -> list[Row]:
    """Kafka gone and back on the single stack: how soon acks resumed after its return."""
    found = data["found"]
    resumed = found["acks_resumed_after_return_s"]
    wrong = found["lost"] + found["duplicated"]
    rows = [
        Row(
            "restart",
            f"acknowledged logs lost or twice, of {found['acked']:,}",
            wrong,
            "",
            None,
            "",
            "0",
            wrong == 0,
        )
    ]
    if resumed is not None:
        rows.insert(
            0,
            Row(
                "restart",
                "Kafka back: acks resume after",
                resumed,
                "s",
                found["longest_ack_gap_before_kill_s"],
                "longest ack gap before the kill",
                "< 10 s",
                resumed < 10,
            ),
        )
    return rows


READERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "ingest": _ingest,
    "alerts": _alerts,
    "notify": _notify,
    "detection": _detection,
    "console": _console,
    "history": _history,
    "search": _search,
    "embedded": _embedded,
    "latency": _latency,
    "volume": _volume,
    "backlog": _backlog,
    "failover": _failover,
    "restart": _restart,
}


def collect(results: Path = RESULTS) -> tuple[list[Row], list[str]]:
    """The rows of every results file there is, and the benchmarks that have none."""
    rows: list[Row] = []
    missing: list[str] = []
    for name, read in READERS.items():
        path = results / f"{name}.json"
        if not path.exists():
            missing.append(name)
            continue
        rows += read(json.loads(path.read_text()))
    return rows, missing


def _number(value: float, unit: str) -> str:
    if unit in ("ms", "s"):
        return f"{value:,.2f} {unit}" if unit == "s" else f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}".strip()


def table(rows: list[Row]) -> list[list[str]]:
    return [
        [
            f"{row.benchmark}: {row.figure}",
            _number(row.value, row.unit),
            f"{_number(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline else "-",
            f"{row.ratio:.0%}" if row.ratio else "-",
            row.target,
            {True: "yes", False: "NO", None: "-"}[row.met],
        ]
        for row in rows
    ]


def chart(rows: list[Row], path: Path) -> None:
    """Each figure with a baseline as a pair of bars, so the gap reads at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [row for row in rows if row.baseline]
    figure, axes = plt.subplots(len(compared), 1, figsize=(9, 1.3 * len(compared) + 0.6))
    for axis, row in zip(axes if len(compared) > 1 else [axes], compared, strict=True):
        assert row.baseline is not None
        axis.barh(["baseline", "logdeck"], [row.baseline, row.value], color=["#9aa5b1", "#2f7ed8"])
        axis.set_title(
            f"{row.benchmark}: {row.figure} ({row.baseline_name} as baseline)",
            fontsize=9,
            loc="left",
        )
        axis.tick_params(labelsize=8)
        axis.set_xlabel(row.unit, fontsize=8)
        for spine in ("top", "right"):
            axis.spines[spine].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def to_json(rows: list[Row], missing: list[str]) -> dict[str, Any]:
    return {
        "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
        "missing": missing,
    }
