"""The shared runtime's pieces: who prints, the non-finite policy's messages, the run directory's
checks, and the process group a session starts (and ends) or leaves to its caller."""

import socket

import pytest
import torch
import torch.distributed as dist

from lkca.errors import CheckpointError, UserError
from lkca.runtime.console import Console
from lkca.runtime.distributed import Dist, check_global_batch
from lkca.runtime.nonfinite import NonFiniteLoss, NonFiniteSteps
from lkca.runtime.run_dir import RunDir
from lkca.runtime.session import Session


def test_only_the_main_process_prints_and_shows_progress(capsys):
    Console(main=False, progress=True).print("hidden")
    Console(main=True, progress=True).print("shown")
    assert capsys.readouterr().out == "shown\n"
    bar = Console(main=False, progress=True).progress(10)
    bar.update(1), bar.set_postfix(loss="1"), bar.close()  # a silent stand-in
    assert type(bar).__name__ == "_NoBar"


def _one_step(skip, checkpoint, loss, where="iter 1"):
    """One step's verdict through the policy (lkca.runtime.nonfinite.NonFiniteSteps): the
    number of bad steps skipped, or its NonFiniteLoss."""
    guard = NonFiniteSteps(torch.device("cpu"), Dist(), checkpoint, skip)
    guard.record(guard.loss_bad(loss), torch.tensor(False))
    return guard.check(lambda i: where)


@pytest.mark.parametrize("skip, returned, fix", [
    (True, 1, None), (False, None, "or set skip_nonfinite: true"), (None, None, "lower --lr or set"),
])
def test_non_finite_policy(skip, returned, fix, tmp_path):
    (tmp_path / "last.pt").write_bytes(b"saved")
    assert _one_step(skip, tmp_path / "last.pt", torch.tensor(1.0)) == 0
    nan = torch.tensor(float("nan"))
    if fix is None:
        assert _one_step(skip, tmp_path / "last.pt", nan) == returned
        return
    with pytest.raises(NonFiniteLoss, match=f"non-finite loss at iter 1; .*{fix}.*then --resume"):
        _one_step(skip, tmp_path / "last.pt", nan)


def test_non_finite_loss_before_any_checkpoint_does_not_advise_resume(tmp_path):
    with pytest.raises(NonFiniteLoss) as err:
        _one_step(None, tmp_path / "last.pt", torch.tensor(float("nan")), "epoch 1 step 2")
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


# --- the device-side non-finite policy (Session.backward_and_step with NonFiniteSteps) ---

def _steps(run, model, optimizer, guard, losses):
    """One training step per entry of ``losses``: a multiplier of the model's loss (nan / inf
    poisons it; "grad" poisons a gradient through a finite loss). Returns each step's mask."""
    masks = []
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    for factor in losses:
        out = model(x)
        if factor == "grad":  # the loss stays finite, a gradient does not
            out = out + torch.sqrt(model.weight[0, 0] * 0.0 - 1.0 + 1.0) * 0.0
            loss = out.square().mean()
        else:
            loss = out.square().mean() * factor
        optimizer.zero_grad(set_to_none=True)
        masks.append(bool(run.backward_and_step(loss, optimizer, model.parameters(), None, guard)))
    return masks


def _fresh(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)


def _state(model, optimizer):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {i: {k: v.clone() for k, v in s.items()} for i, s in
             enumerate(optimizer.state_dict()["state"].values())})


def _equal_states(a, b):
    for x, y in zip(a[0].values(), b[0].values()):
        assert torch.equal(x, y)
    assert a[1].keys() == b[1].keys()
    for i in a[1]:
        for k in a[1][i]:
            assert torch.equal(a[1][i][k], b[1][i][k]), k


def test_stop_masks_the_bad_step_and_every_later_one_until_the_check(tmp_path):
    """skip_nonfinite false: the first bad step and the steps after it in the same check window
    change no weight and no optimiser state; the check names the first bad step."""
    with Session(tmp_path / "run", device="cpu", batch_size=2, progress=False) as run:
        model, optimizer = _fresh()
        guard = run.nonfinite_steps(skip=False)
        _steps(run, model, optimizer, guard, [1.0])
        before = _state(model, optimizer)
        assert _steps(run, model, optimizer, guard, [float("nan"), 1.0, 1.0]) == [True] * 3
        _equal_states(before, _state(model, optimizer))
        with pytest.raises(NonFiniteLoss, match="non-finite loss at step 2, before any checkpoint"):
            guard.check(lambda i: f"step {i + 1}")


def test_skip_masks_only_the_bad_steps_and_counts_them(tmp_path):
    with Session(tmp_path / "run", device="cpu", batch_size=2, progress=False) as run:
        model, optimizer = _fresh()
        guard = run.nonfinite_steps(skip=True)
        masks = _steps(run, model, optimizer, guard, [1.0, float("inf"), "grad", 1.0])
        assert masks == [False, True, True, False]
        assert guard.check(lambda i: f"step {i + 1}") == 2
        assert guard.check(lambda i: f"step {i + 1}") == 0  # counted afresh
        # the skipped steps changed nothing: two good steps from the same start give the same
        same, same_opt = _fresh()
        _steps(run, same, same_opt, run.nonfinite_steps(skip=True), [1.0, 1.0])
        _equal_states(_state(model, optimizer), _state(same, same_opt))


def test_non_finite_gradients_through_a_finite_loss_are_named(tmp_path):
    with Session(tmp_path / "run", device="cpu", batch_size=2, progress=False) as run:
        model, optimizer = _fresh()
        guard = run.nonfinite_steps(skip=False)
        _steps(run, model, optimizer, guard, [1.0, "grad"])
        with pytest.raises(NonFiniteLoss, match="non-finite gradients at step 2"):
            guard.check(lambda i: f"step {i + 1}")


def test_fp16_a_bad_loss_is_skipped_by_the_scaler_and_counted(tmp_path):
    with Session(tmp_path / "run", device="cpu", batch_size=2, progress=False,
                 precision="fp16") as run:
        model, optimizer = _fresh()
        guard = run.nonfinite_steps(skip=True)
        _steps(run, model, optimizer, guard, [1.0])
        before, scale = _state(model, optimizer), run.scaler.get_scale()
        assert _steps(run, model, optimizer, guard, [float("nan")]) == [True]
        _equal_states(before, _state(model, optimizer))
        assert run.scaler.get_scale() < scale  # the scaler saw it too and lowered its scale
        assert guard.check(lambda i: f"step {i + 1}") == 1


def test_a_guarded_step_waits_for_the_host_never(tmp_path):
    from lkca.analysis.step_counts import count_step

    with Session(tmp_path / "run", device="cpu", batch_size=2, progress=False) as run:
        model, optimizer = _fresh()
        guard = run.nonfinite_steps(skip=False)
        x = torch.randn(4, 3)
        with count_step() as counts:
            for _ in range(3):
                loss = model(x).square().mean()
                optimizer.zero_grad(set_to_none=True)
                run.backward_and_step(loss, optimizer, model.parameters(), 1.0, guard)
        assert counts.host_waits == 0, counts.host_wait_names


@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("tf32", True), ("bf16", False)])
def test_tf32_is_set_for_the_session_and_restored_after(tmp_path, precision, tf32):
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with Session(tmp_path / "run", device="cpu", batch_size=2, progress=False,
                 precision=precision):
        assert torch.backends.cuda.matmul.allow_tf32 is tf32
        assert torch.backends.cudnn.allow_tf32 is tf32  # torch's default (True) is not exact fp32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
