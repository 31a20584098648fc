"""lkca train's intra-op threads on CPU: as many as the load measured now leaves cores free, no
more than the CPUs the process may use, unless OMP_NUM_THREADS chooses (docs/benchmarks.md,
"Threads"); a resume with another count says so (docs/reproducibility.md)."""

import functools
import json
import os
from pathlib import Path

import pytest
import torch

from lkca.runtime import device as device_module
from lkca.runtime import session as session_module
from lkca.runtime.device import cgroup_quota, cpu_threads, usable_cpus

CPU = torch.device("cpu")
TICKS_PER_S = 100  # USER_HZ


def proc_stat(others: float, own: float, cores: int = 4, seconds: float = 0.15):
    """A reader of (busy, all, own) ticks, as /proc/stat and /proc/self/stat give them, on a
    machine of ``cores`` CPUs where other processes keep ``others`` cores busy and this one
    ``own``: the first call reads the start of the sample, the second its end."""
    readings = iter([(5000, 40000, 300),
                     (5000 + round((others + own) * seconds * TICKS_PER_S),
                      40000 + round(cores * seconds * TICKS_PER_S),
                      300 + round(own * seconds * TICKS_PER_S))])
    return lambda: next(readings)


def no_limit():
    return None, ""


@pytest.fixture
def machine(monkeypatch):
    """A 4-core machine with torch's 4 threads; returns cpu_threads with a fake /proc/stat of
    ``others`` and ``own`` busy cores and, optionally, the usable CPUs."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device_module.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(device_module.torch, "get_num_threads", lambda: 4)
    waited = []

    def choose(others: float, own: float = 0.0, cpus=no_limit, device=CPU):
        return cpu_threads(device, ticks=proc_stat(others, own), wait=waited.append, cpus=cpus)

    choose.waited = waited
    return choose


def test_a_quiet_machine_keeps_torchs_threads_and_samples_briefly(machine):
    assert machine(others=0.2) == (4, None)
    assert machine.waited == [device_module.LOAD_SAMPLE_S] and 0.1 <= machine.waited[0] <= 0.2


def test_its_own_cpu_time_is_not_counted_as_load(machine):
    # the process itself (its data loading threads, say) keeps 3 cores busy during the sample
    assert machine(others=0.0, own=3.0) == (4, None)


@pytest.mark.parametrize("others, threads", [(1.0, 3), (2.6, 1), (3.9, 1), (8.0, 1)])
def test_a_busy_machine_gets_the_free_cores_and_a_log_line(machine, others, threads):
    chosen, note = machine(others=others)
    assert chosen == threads
    assert note.startswith(f"threads: {threads} intra-op thread{'s' if threads > 1 else ''} "
                           f"instead of torch's 4: other processes used {others:.1f} of the 4 "
                           "CPUs over the last 0.15 s (/proc/stat)")
    assert note.endswith("set OMP_NUM_THREADS to choose") and "\n" not in note


def test_the_load_now_decides_not_the_load_average(machine, monkeypatch):
    # right after another run ended the 1-minute average still reads 1 busy core
    monkeypatch.setattr(device_module.os, "getloadavg", lambda: (4.0, 4.0, 4.0), raising=False)
    assert machine(others=0.0) == (4, None)


def test_the_cpus_the_process_may_use_cap_the_threads(machine):
    chosen, note = machine(others=0.0, cpus=lambda: (2, "the process's CPU affinity"))
    assert chosen == 2 and "the process's CPU affinity allows 2 CPUs" in note
    chosen, note = machine(others=3.0, cpus=lambda: (2, "the process's CPU affinity"))
    assert chosen == 1 and "affinity" not in note  # the load leaves fewer than the affinity


def test_without_proc_or_limits_torchs_choice_stands(machine):
    def nothing():
        return 0, 0, 0  # cpu_ticks where there is no /proc

    assert cpu_threads(CPU, ticks=nothing, wait=lambda s: None, cpus=no_limit) == (4, None)
    chosen, note = cpu_threads(CPU, ticks=nothing, wait=lambda s: None,
                               cpus=lambda: (1, "the CPU quota of its cgroup (0.5 CPUs)"))
    assert chosen == 1 and "/proc/stat" not in note and "quota of its cgroup (0.5 CPUs)" in note


def test_omp_num_threads_and_other_devices_are_left_alone(machine, monkeypatch):
    assert machine(others=3.9, device=torch.device("cuda", 0)) == (4, None)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert machine(others=3.9) == (4, None)
    assert machine.waited == []  # nothing sampled when nothing is chosen


def test_affinity_counts_the_cpus_allowed():
    assert usable_cpus(lambda: {0, 3, 5}, cgroup_root=Path(os.devnull), self_cgroup=Path(os.devnull)) == (
        3, "the process's CPU affinity")

    def refused():
        raise OSError("no CPU affinity on this platform")

    assert usable_cpus(refused, cgroup_root=Path(os.devnull), self_cgroup=Path(os.devnull)) == (None, "")


def _cgroup(tmp_path, self_cgroup: str, files: dict[str, str]):
    root = tmp_path / "sys_fs_cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "self_cgroup").write_text(self_cgroup)
    return root, tmp_path / "self_cgroup"


@pytest.mark.parametrize("cpu_max, quota", [("150000 100000\n", 1.5), ("50000 100000\n", 0.5),
                                            ("max 100000\n", None), ("garbage\n", None)])
def test_cgroup_v2_quota(tmp_path, cpu_max, quota):
    root, own = _cgroup(tmp_path, "0::/user.slice/job\n", {"user.slice/job/cpu.max": cpu_max})
    assert cgroup_quota(root, own) == quota


def test_cgroup_v1_quota_and_the_cpus_it_allows(tmp_path):
    root, own = _cgroup(tmp_path, "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n",
                        {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000\n",
                         "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert cgroup_quota(root, own) == 2.5
    # 2.5 CPUs' worth of time: 3 threads; an affinity of 2 CPUs is the tighter limit
    assert usable_cpus(lambda: set(range(8)), root, own) == (
        3, "the CPU quota of its cgroup (2.5 CPUs)")
    assert usable_cpus(lambda: {0, 1}, root, own) == (2, "the process's CPU affinity")


def test_cgroup_v1_without_quota_and_no_cgroup_at_all(tmp_path):
    root, own = _cgroup(tmp_path, "4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                                                        "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cgroup_quota(root, own) is None
    assert cgroup_quota(tmp_path / "missing", tmp_path / "missing_self") is None


def _tiny(out, **kw):
    from lkca.train.config import TrainConfig

    return TrainConfig(model="vit_lkca_500k", model_args={"depth": 1, "dim": 16, "num_heads": 2},
                       dataset="digits", batch_size=32, max_steps_per_epoch=1, warmup_epochs=0,
                       out=str(out), progress=False, device="cpu", **kw)


def test_the_run_restores_torchs_threads_and_logs_the_choice(tmp_path, monkeypatch, capsys):
    from lkca.train.engine import train

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device_module.os, "cpu_count", lambda: 4)
    busy = functools.partial(cpu_threads, ticks=proc_stat(others=3.9, own=0.0),
                             wait=lambda s: None, cpus=no_limit)
    monkeypatch.setattr(session_module, "cpu_threads", busy)
    before = torch.get_num_threads()
    train(_tiny(tmp_path / "run", epochs=1))
    assert torch.get_num_threads() == before
    out = capsys.readouterr().out
    assert ("threads: 1 intra-op thread instead of" in out) == (before > 1)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["threads"] == 1
    assert os.environ.get("OMP_NUM_THREADS") is None


def test_a_resume_with_another_thread_count_says_so_and_records_it(tmp_path, monkeypatch,
                                                                    capsys):
    from lkca.train.engine import train

    monkeypatch.setattr(session_module, "cpu_threads", lambda device: (1, None))
    train(_tiny(tmp_path / "run", epochs=2, stop_after_epochs=1))
    assert "--resume: the run trained with" not in capsys.readouterr().out
    monkeypatch.setattr(session_module, "cpu_threads", lambda device: (2, None))
    train(_tiny(tmp_path / "run", epochs=2), resume=True)
    out = capsys.readouterr().out
    line = [ln for ln in out.splitlines() if ln.startswith("--resume: the run trained with")]
    assert line == ["--resume: the run trained with 1 intra-op thread and continues with 2, so "
                    "its results will not be bit-identical to an unbroken run's; to keep them, "
                    "resume with OMP_NUM_THREADS=1 (docs/reproducibility.md)"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["threads"] == 2
    assert summary["resume_history"] == [
        {"epoch": 1, "changed": {"stop_after_epochs": [1, None], "threads": [1, 2]}}]


def test_a_resume_with_the_same_thread_count_is_silent(tmp_path, monkeypatch, capsys):
    from lkca.train.engine import train

    monkeypatch.setattr(session_module, "cpu_threads", lambda device: (1, None))
    train(_tiny(tmp_path / "run", epochs=2, stop_after_epochs=1))
    train(_tiny(tmp_path / "run", epochs=2), resume=True)
    assert "--resume: the run trained with" not in capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resume_history"] == [{"epoch": 1, "changed": {"stop_after_epochs": [1, None]}}]
