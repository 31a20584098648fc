"""lkca train's intra-op threads on CPU: as many as the load average leaves cores free, unless
OMP_NUM_THREADS chooses (docs/benchmarks.md, "Threads")."""

import os

import pytest
import torch

from lkca.runtime import device as device_module
from lkca.runtime.device import cpu_threads

CPU = torch.device("cpu")


@pytest.fixture
def machine(monkeypatch):
    """A 4-core machine with torch's 4 threads; returns a setter of the load average."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device_module.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(device_module.torch, "get_num_threads", lambda: 4)

    def load(value: float) -> None:
        monkeypatch.setattr(device_module.os, "getloadavg", lambda: (value, value, value))

    return load


def test_a_quiet_machine_keeps_torchs_threads(machine):
    machine(0.3)
    assert cpu_threads(CPU) == (4, None)


@pytest.mark.parametrize("load, threads", [(1.2, 3), (2.6, 1), (7.9, 1)])
def test_a_loaded_machine_gets_the_free_cores_and_a_log_line(machine, load, threads):
    machine(load)
    chosen, note = cpu_threads(CPU)
    assert chosen == threads
    assert note.startswith(f"threads: {threads} intra-op thread{'s' if threads > 1 else ''} "
                           f"instead of torch's 4: the load average ({load:.1f})")
    assert note.endswith("set OMP_NUM_THREADS to choose")


def test_omp_num_threads_and_other_devices_are_left_alone(machine, monkeypatch):
    machine(7.9)
    assert cpu_threads(torch.device("cuda", 0)) == (4, None)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert cpu_threads(CPU) == (4, None)


def test_the_run_restores_torchs_threads_and_logs_the_choice(tmp_path, monkeypatch, capsys):
    from lkca.train.config import TrainConfig
    from lkca.train.engine import train

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device_module.os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    before = torch.get_num_threads()
    train(TrainConfig(model="vit_lkca_500k", model_args={"depth": 1, "dim": 16, "num_heads": 2},
                      dataset="digits", epochs=1, batch_size=32, max_steps_per_epoch=1,
                      warmup_epochs=0, out=str(tmp_path / "run"), progress=False, device="cpu"))
    assert torch.get_num_threads() == before
    out = capsys.readouterr().out
    assert ("threads: 1 intra-op thread instead of" in out) == (before > 1)
    assert os.environ.get("OMP_NUM_THREADS") is None
