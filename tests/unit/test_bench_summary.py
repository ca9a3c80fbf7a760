"""The benchmark summary: every results file read, missing ones named, ratios computed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.common import RESULTS
from bench.console import BASELINE, FEATURES, RateRun, Samples
from bench.console import figure_rows as console_figures
from bench.history import Measured, Start
from bench.history import figure_rows as history_figures
from bench.summary import READERS, Row, collect, table
from bench.volume import Figure as VolumeFigure


def test_every_committed_result_reads_into_rows_of_the_right_shape() -> None:
    """The shape of the results, not whether they met their targets: an honest miss is
    committed and reported, never hidden to keep a test green."""
    rows, missing = collect()
    assert {row.benchmark for row in rows} == set(READERS) - set(missing)
    for row in rows:
        assert row.figure and isinstance(row.unit, str), row
        assert isinstance(row.value, float | int) and row.value >= 0, row
        assert row.baseline is None or row.baseline > 0, row
        assert (row.met is None) == (row.target == "-"), row


def test_a_benchmark_without_results_is_named_not_dropped(tmp_path: Path) -> None:
    shutil.copy(RESULTS / "embedded.json", tmp_path / "embedded.json")
    rows, missing = collect(tmp_path)
    assert missing == [name for name in READERS if name != "embedded"]
    assert {row.benchmark for row in rows} == {"embedded"}


def test_ratio_and_cells_come_from_value_and_baseline(tmp_path: Path) -> None:
    data = json.loads((RESULTS / "embedded.json").read_text())
    data["end_to_end"]["rate"], data["sqlite_fts5_ceiling"]["rate"] = 25_000.0, 50_000.0
    (tmp_path / "embedded.json").write_text(json.dumps(data))
    row: Row = collect(tmp_path)[0][0]
    assert row.ratio == 0.5 and row.met is False
    assert table([row])[0][1:4] + table([row])[0][5:] == [
        "25,000 logs/s",
        "50,000 logs/s (FTS5 batched inserts)",
        "50%",
        "NO",
    ]


def test_volume_rows_are_its_figures_as_the_bench_writes_them(tmp_path: Path) -> None:
    figures = [
        VolumeFigure("Kafka: logs topic on disk per 1M logs", "MB", 346.0, 252.0, "JSON as sent"),
        VolumeFigure(
            "Elasticsearch: log indices' store per 1M logs", "MB", None, 252.0, "JSON as sent"
        ),
        VolumeFigure("search p95, slowest query", "ms", 80.0, 40.0, "at 1,000,000"),
    ]
    data = {"benchmark": "volume", "figures": [figure.to_json() for figure in figures]}
    (tmp_path / "volume.json").write_text(json.dumps(data))
    rows, missing = collect(tmp_path)
    assert "volume" not in missing
    # A figure not measured (Kafka's disk with the broker elsewhere, say) is left out.
    assert [row.figure for row in rows] == [figures[0].name, figures[2].name]
    assert [cells[1:] for cells in table(rows)] == [
        ["346 MB", "252 MB (JSON as sent)", "137%", "-", "-"],
        ["80.0 ms", "40.0 ms (at 1,000,000)", "200%", "-", "-"],
    ]


def test_console_rows_put_the_features_beside_the_level_filter_alone(tmp_path: Path) -> None:
    samples = Samples(press_ms={FEATURES: [10.0, 30.0, 60.0], BASELINE: [8.0, 20.0, 40.0]})
    samples.lag_s.append(0.2)
    samples.rss.extend([(0.0, 70.0), (1.0, 71.0)])
    run = RateRun(
        20_000, 2.0, 40_000, 2.0, {}, 40_000, 40_000, 10_000, 10_000, 900, True, 900, samples
    )
    data = {"benchmark": "console", "figures": console_figures([run])}
    (tmp_path / "console.json").write_text(json.dumps(data))
    [row] = collect(tmp_path)[0]
    assert (row.value, row.baseline, row.met) == (60.0, 40.0, False)
    assert table([row])[0][2] == "40.0 ms (level filter only)"


def test_history_rows_are_p50_and_p95_per_store_beside_the_bare_query(tmp_path: Path) -> None:
    store = Measured("Elasticsearch", 250_000)
    for seconds, bare in ((0.6, 0.05), (0.8, 0.07), (1.2, 0.09)):
        store.starts.append(Start(seconds, 0.3, [(0.35, 0.5)], 1000, True))
        store.cold_s.append(bare)
    data = {"benchmark": "history", "figures": history_figures([store], 1_000_000)}
    (tmp_path / "history.json").write_text(json.dumps(data))
    rows = collect(tmp_path)[0]
    assert [(row.value, row.baseline, row.met) for row in rows] == [
        (800.0, 70.0, None),
        (1200.0, 90.0, False),
    ]
