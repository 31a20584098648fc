"""The suite leaves nothing in the temporary folder nor in the user's cache folders
(tests/conftest.py removes its Hypothesis home and its library cache folders, and keeps
torch.compile's cache under pytest's folder; .ci/run checks the whole suite the same
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
    home = tmp_path / "home"  # the user's cache folders: left empty too
    home.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), HOME=str(home))
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "MPLCONFIGDIR"):
        env.pop(var, None)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
         f"{ROOT}/tests/autotune/test_timing.py::test_first_call_cost_is_bounded"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    left = sorted(p.name for p in tmp.iterdir())
    assert [n for n in left if not n.startswith("pytest-of-")] == [], left
    assert list(home.iterdir()) == []


def test_library_caches_go_to_a_temporary_folder():
    """matplotlib's, YAPF's and onnxscript's caches follow $XDG_CACHE_HOME / $MPLCONFIGDIR, which
    tests/conftest.py points at a temporary folder of its own (removed at exit)."""
    import tempfile

    import matplotlib

    temp = Path(tempfile.gettempdir()).resolve()
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "MPLCONFIGDIR"):
        assert temp in Path(os.environ[var]).resolve().parents, var
    assert Path(matplotlib.get_cachedir()).resolve() == Path(os.environ["MPLCONFIGDIR"]).resolve()
