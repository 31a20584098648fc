"""The suite leaves nothing in the temporary folder (tests/conftest.py removes its Hypothesis home
and keeps torch.compile's cache under pytest's folder; .ci/run checks the whole suite the same
way): a pytest run of one Hypothesis test on two xdist workers (as CI runs), with TMPDIR
pointed at an empty folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a pytest session with two workers: about 35 s on the loaded 2-core machine
def test_a_pytest_run_leaves_only_pytests_own_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
         f"{ROOT}/tests/autotune/test_timing.py::test_first_call_cost_is_bounded"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    left = sorted(p.name for p in tmp.iterdir())
    assert [n for n in left if not n.startswith("pytest-of-")] == [], left
