"""Coverage-guided fuzzing of the Forward decoder and router (tests/fuzz/forward_atheris.py).

libFuzzer ends the process when it is done, so the fuzzer runs as a subprocess. The default
run is 20000 inputs, for a quick suite; for a long run set `LOGDECK_ATHERIS_RUNS`, e.g.
`LOGDECK_ATHERIS_RUNS=1000000 pytest tests/unit/test_forward_atheris.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[dev]')")

RUNS = int(os.environ.get("LOGDECK_ATHERIS_RUNS", "20000"))
ROOT = Path(__file__).resolve().parents[2]


def test_the_decoder_and_router_survive_coverage_guided_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.forward_atheris",
        f"-runs={RUNS}",
        "-max_len=4096",
        "-timeout=30",
        f"-artifact_prefix={tmp_path}/",
        str(corpus),
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=max(600, RUNS // 50),
        check=False,
    )
    output = done.stdout + done.stderr
    crash = "\n".join(output.splitlines()[-60:])
    assert done.returncode == 0, f"the fuzzer failed (exit {done.returncode}):\n{crash}"
    assert re.search(rf"^Done {RUNS} runs in ", output, re.MULTILINE), (
        f"libFuzzer did not finish its {RUNS} runs:\n{crash}"
    )
