"""A user's mistake in a benchmark script: one line on stderr, exit code 2, no traceback; under
torchrun once, on rank 0 (benchmarks/script_errors.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def script(name: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def assert_one_line(done: subprocess.CompletedProcess, prefix: str, expected: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(prefix + ": error: ") and expected in done.stderr, done.stderr


def ablation_args(tmp_path: Path) -> list[str]:
    return ["--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out.json"),
            "--seeds", "0", "--variants", "lkca"]


def test_a_device_this_machine_lacks(tmp_path):
    # cuda:99: no machine of ours has 100 GPUs, with or without CUDA
    done = script("ablation_layout", "--device", "cuda:99", *ablation_args(tmp_path), cwd=tmp_path)
    assert_one_line(done, "ablation_layout.py", "--device cuda:99")
    done = script("augment_throughput", "--device", "cuda:99", "--out",
                  str(tmp_path / "a.json"), cwd=tmp_path)
    assert_one_line(done, "augment_throughput.py", "--device cuda:99")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_missing_data_is_one_line_before_any_result(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    done = script("ablation_layout", "--dataset", "cifar10", "--data-dir", str(empty),
                  *ablation_args(tmp_path), cwd=tmp_path)
    assert_one_line(done, "ablation_layout.py", f"{empty / 'cifar-10-batches-py'} does not exist")
    assert not (tmp_path / "out.json").exists()


def test_a_scripts_own_message_is_one_line_too(tmp_path):
    done = script("ablation_layout", "--set", "epochs", *ablation_args(tmp_path), cwd=tmp_path)
    assert_one_line(done, "ablation_layout.py", "expected KEY=VALUE, got 'epochs'")


def test_under_torchrun_only_rank_0_prints(tmp_path):
    args = ["--device", "cuda:99", *ablation_args(tmp_path)]
    assert_one_line(script("ablation_layout", *args, cwd=tmp_path, RANK="0"),
                    "ablation_layout.py", "--device cuda:99")
    other = script("ablation_layout", *args, cwd=tmp_path, RANK="3")
    assert other.returncode == 2 and other.stderr == "" and other.stdout == ""


@pytest.fixture
def script_errors(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    spec = importlib.util.spec_from_file_location("script_errors", BENCHMARKS / "script_errors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bugs_keep_their_traceback_and_codes_pass_through(script_errors, capsys):
    from lkca.errors import ConfigError

    def bug():
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        script_errors.run_script(bug, "x.py")
    for main, code in ((lambda: 0, 0), (lambda: None, 0), (lambda: 1, 1)):
        with pytest.raises(SystemExit) as exit_:
            script_errors.run_script(main, "x.py")
        assert exit_.value.code == code
    assert capsys.readouterr().err == ""

    def mistake():
        raise ConfigError("line one\nline two " + "x" * 2000)

    with pytest.raises(SystemExit) as exit_:
        script_errors.run_script(mistake, "x.py")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("x.py: error: line one line two xxx")
    assert err.count("\n") == 1 and len(err) <= len("x.py: error: ") + 1001


def test_every_script_that_takes_arguments_ends_through_run_script():
    for path in sorted(BENCHMARKS.glob("*.py")):
        text = path.read_text()
        if path.name == "script_errors.py" or "argparse" not in text:
            continue
        assert text.rstrip().endswith("run_script(main)"), path.name
