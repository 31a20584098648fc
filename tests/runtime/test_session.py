"""The shared runtime's pieces: who prints, the non-finite policy's messages, the run directory's
checks, and the process group a session starts (and ends) or leaves to its caller."""

import socket

import pytest
import torch
import torch.distributed as dist

from lkca.errors import CheckpointError, UserError
from lkca.runtime.console import Console
from lkca.runtime.distributed import Dist, check_global_batch
from lkca.runtime.nonfinite import NonFiniteLoss, check_finite
from lkca.runtime.run_dir import RunDir
from lkca.runtime.session import Session


def test_only_the_main_process_prints_and_shows_progress(capsys):
    Console(main=False, progress=True).print("hidden")
    Console(main=True, progress=True).print("shown")
    assert capsys.readouterr().out == "shown\n"
    bar = Console(main=False, progress=True).progress(10)
    bar.update(1), bar.set_postfix(loss="1"), bar.close()  # a silent stand-in
    assert type(bar).__name__ == "_NoBar"


@pytest.mark.parametrize("skip, returned, fix", [
    (True, False, None), (False, None, "or set skip_nonfinite: true"), (None, None, "lower --lr or set"),
])
def test_non_finite_policy(skip, returned, fix, tmp_path):
    (tmp_path / "last.pt").write_bytes(b"saved")
    assert check_finite(torch.tensor(1.0), Dist(), "iter 1", tmp_path / "last.pt", skip)
    nan = torch.tensor(float("nan"))
    if fix is None:
        assert check_finite(nan, Dist(), "iter 1", tmp_path / "last.pt", skip) is returned
        return
    with pytest.raises(NonFiniteLoss, match=f"non-finite loss at iter 1; .*{fix}.*then --resume"):
        check_finite(nan, Dist(), "iter 1", tmp_path / "last.pt", skip)


def test_non_finite_loss_before_any_checkpoint_does_not_advise_resume(tmp_path):
    with pytest.raises(NonFiniteLoss) as err:
        check_finite(torch.tensor(float("nan")), Dist(), "epoch 1 step 2", tmp_path / "last.pt")
    message = str(err.value)
    assert "before any checkpoint was saved" in message and "start the run again" in message
    assert "--resume" not in message and "last.pt" not in message


def test_run_directory_checks(tmp_path):
    with pytest.raises(CheckpointError, match="--resume: no checkpoint at"):
        RunDir(tmp_path / "new").check_resume(True)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is not writable"):
        RunDir(tmp_path / "file" / "run").prepare()
    run = RunDir(tmp_path / "run")
    run.prepare()
    (run.checkpoints / ".last.pt.abc.tmp").write_bytes(b"half")  # left by a killed process
    run.prepare()
    assert list(run.checkpoints.iterdir()) == []
    with pytest.raises(UserError, match="not divisible by the 3 processes"):
        check_global_batch(32, world=3)


def test_a_session_leaves_a_process_group_it_did_not_start(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun, with the caller's group
        with Session(tmp_path / "run", device="cpu", batch_size=2, progress=False) as run:
            assert (run.env.rank, run.env.world_size, run.env.owns_group) == (0, 1, False)
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()


def test_a_stop_signal_in_start_up_is_one_interrupted_line():
    import os
    import signal

    from lkca.runtime.signals import Interrupted, StartupStop, StopRequest

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="stopped by SIGTERM while lkca train was starting"):
        with StartupStop("lkca train"):
            with StopRequest() as stop:  # while the run trains: a flag, no exception
                os.kill(os.getpid(), signal.SIGTERM)
                assert stop.signum == signal.SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)  # outside the run again: stops at once
    assert signal.getsignal(signal.SIGTERM) is before


def test_importing_lkca_installs_no_signal_handler():
    """docs/errors.md: before a command installs its own handlers, SIGTERM keeps Python's default
    (a library must not change its users' signal handling by being imported)."""
    import subprocess
    import sys

    code = ("import signal; import lkca, lkca.cli, lkca.train.engine, lkca.seg.engine; "
            "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "
            "signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
