"""Shared test machinery: the SIGKILL-and-resume kit used by the classification and segmentation
crash-safety tests; LKCA's autotune cache under pytest's temporary directory; the user's cache
and config folders (XDG_*, MPLCONFIGDIR) pointed at a temporary folder."""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis: its files (example database, caches) under a temporary folder, never .hypothesis/
# in the checkout (.ci/run refuses a dirty checkout), removed when the process (each xdist worker
# its own) exits, so nothing is left in /tmp either (.ci/run checks that too); no example database
# and examples drawn from a fixed seed, so that every run of the suite tests the same cases.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="lkca-tests-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
settings.register_profile("lkca", database=None, derandomize=True)
settings.load_profile("lkca")

# The user's cache and config folders: what libraries the suite imports write there (matplotlib's
# font cache, YAPF's and onnxscript's (Microsoft/) caches under $XDG_CACHE_HOME) goes to a
# temporary folder instead, set before any of them is imported and inherited by subprocesses,
# removed when the process exits (each xdist worker its own).
_USER_DIRS = tempfile.mkdtemp(prefix="lkca-tests-home-")
atexit.register(shutil.rmtree, _USER_DIRS, ignore_errors=True)
for _var, _sub in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config"),
                   ("XDG_DATA_HOME", "data"), ("MPLCONFIGDIR", "matplotlib")):
    os.environ[_var] = os.path.join(_USER_DIRS, _sub)

# Runs the CLI with the fsync of a checkpoint's temporary file slowed down and announced, so a
# test can kill inside a checkpoint write (config.yaml and the run log are atomic writes too,
# but not the ones this kill is for).
SLOW_FSYNC = """
import os, sys, time
import lkca.checkpoint.files as c
real = os.fsync
def slow(fd):
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        name = ""
    if "/checkpoints/" in name and name.endswith(".tmp"):
        print("FSYNC", flush=True)
        time.sleep(0.4)
    real(fd)
c.os.fsync = slow
from lkca.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(autouse=True, scope="session")
def _autotune_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory):
    """LKCA's autotune cache file for this session (inherited by subprocesses): nothing is written
    to the user's cache directory, and every process of the session reuses the first one's timed
    choices, so runs compared with each other (resume, eval after train) run the same code."""
    os.environ["LKCA_AUTOTUNE_CACHE"] = str(tmp_path_factory.mktemp("autotune") / "autotune.json")
    yield


@pytest.fixture(autouse=True, scope="session")
def _compile_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory):
    """torch.compile's inductor cache for this session under pytest's temporary folder (inherited
    by subprocesses), not /tmp/torchinductor_$USER: the suite leaves nothing in /tmp (.ci/run)."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("inductor"))
    yield


@pytest.fixture(autouse=True, scope="session")
def _threads_per_worker():
    """Under pytest-xdist (``-n N``, the default of this suite's configuration) each worker gets
    its share of the cores, for torch here and (``OMP_NUM_THREADS``) in the processes it starts,
    so that N workers do not oversubscribe the machine. Without xdist ``OMP_NUM_THREADS`` is set
    to torch's own count (unless set already): either way lkca train's choice of threads by the
    machine's load (tests/runtime/test_cpu_threads.py) stays out of the other tests' output."""
    import torch

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(share)
        torch.set_num_threads(share)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
    yield


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own temporary folder, so what a command writes to the current folder
    by default (``runs/``, figures) lands there and never in the checkout (``.ci/run`` fails on a
    dirty checkout). Tests reach the repository's files by absolute paths."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fresh_autotune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LKCA's autotuner as in a new process (default policy, nothing chosen, nothing pinned), its
    cache a new file under tmp_path (returned); the session's state is restored afterwards."""
    from lkca.autotune import tuner

    path = tmp_path / "autotune.json"
    monkeypatch.setenv("LKCA_AUTOTUNE_CACHE", str(path))
    saved = tuner._STATE
    tuner._STATE = tuner._State()
    yield path
    tuner._STATE = saved


class CrashKit:
    """Start ``lkca`` in a subprocess, SIGKILL it (inside a checkpoint write, then at random
    moments), check that whatever is on disk is complete, and resume until the run finishes."""

    @staticmethod
    def assert_intact(out: Path) -> None:
        """Whatever exists is complete: loadable training state, loadable weights."""
        from lkca.checkpoint.files import load_state, read_weights

        ck = out / "checkpoints"
        if (ck / "last.pt").exists():
            load_state(ck / "last.pt")
        for f in ck.glob("*.safetensors"):
            read_weights(f)

    @staticmethod
    def start(argv: list[str], slow_fsync: bool = False) -> subprocess.Popen:
        head = [sys.executable, "-c", SLOW_FSYNC] if slow_fsync else [sys.executable, "-m", "lkca"]
        return subprocess.Popen(head + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def kill_and_resume(self, argv: list[str], out: Path, kills: int = 3, seed: int = 0) -> int:
        """Kill once inside a checkpoint write and ``kills`` times at random moments, resuming each
        time, then let the run finish; returns the number of kills that landed.

        A random moment is a random delay (0-0.5 s) after the process reports its first epoch or
        evaluation ("epoch ..." / "iter ..." lines), so it lands mid-run however fast the machine.
        """
        rng = random.Random(seed)
        landed = 0
        proc = self.start(argv, slow_fsync=True)
        for line in proc.stdout:
            if line.startswith("FSYNC"):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=120)
        landed += proc.returncode == -signal.SIGKILL
        self.assert_intact(out)
        for attempt in range(kills + 1):
            # no checkpoint yet: the killed start's config.yaml is a run, which only --overwrite
            # starts over (a new run never writes over an earlier one)
            resume = ["--resume"] if (out / "checkpoints" / "last.pt").exists() else (
                ["--overwrite"] if out.exists() else [])
            proc = self.start(argv + resume)
            if attempt == kills:
                assert proc.wait(timeout=600) == 0, proc.stderr.read()
                break
            for line in proc.stdout:
                if line.startswith(("epoch ", "iter ")):
                    time.sleep(rng.uniform(0.0, 0.5))
                    break
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                landed += 1
            proc.wait(timeout=120)
            self.assert_intact(out)
        assert not list((out / "checkpoints").glob(".*.tmp")), "a temporary file was left behind"
        return landed


    def killed_run_equals_uninterrupted(self, argv: list[str], tmp: Path, kills: int = 3) -> None:
        """Run ``lkca *argv --out tmp/ref`` uninterrupted and ``--out tmp/killed`` through
        :meth:`kill_and_resume`; at least ``kills`` random kills must land, and the final weights
        and the metrics (timing fields aside) must be identical."""
        import torch
        from safetensors.torch import load_file

        ref, out = tmp / "ref", tmp / "killed"
        proc = self.start(argv + ["--out", str(ref)])
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
        landed = self.kill_and_resume(argv + ["--out", str(out)], out, kills=kills)
        assert landed >= kills, landed
        ref_w = load_file(str(ref / "checkpoints" / "last.safetensors"))
        got_w = load_file(str(out / "checkpoints" / "last.safetensors"))
        for k in ref_w:
            assert torch.equal(ref_w[k], got_w[k]), k
        assert _metrics(ref) == _metrics(out)


def _metrics(run: Path) -> list[dict]:
    """metrics.jsonl without its timing fields (images/s, iterations/s, wall time)."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "per_s" not in k and "wall" not in k} for r in rows]


@pytest.fixture
def crash_kit() -> CrashKit:
    return CrashKit()
