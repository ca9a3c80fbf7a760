"""The benchmark summary: every results file read, missing ones named, ratios computed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.common import RESULTS
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
