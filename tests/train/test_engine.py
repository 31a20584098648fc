"""The training engine: outputs, exact resume (epoch boundary, signal mid-epoch), eval, learning."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from lkca.cli import main
from lkca.runtime import session
from lkca.runtime.nonfinite import NonFiniteLoss, NonFiniteSteps
from lkca.runtime.signals import Interrupted, StopRequest
from lkca.train import engine
from lkca.train.config import build_config
from lkca.train.engine import train


def _weights(run):
    return load_file(str(run / "checkpoints" / "last.safetensors"))


def _metrics(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_run_writes_the_contract_files(tiny_cfg, tmp_path):
    summary = train(tiny_cfg())
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints/last.pt",
                 "checkpoints/last.safetensors", "checkpoints/best.safetensors"):
        assert (run / name).is_file(), name
    rows = _metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "train_loss", "test_loss", "test_top1", "lr"}
    assert set(summary) == {"model", "dataset", "params", "macs", "epochs", "top1", "best_top1",
                            "best_epoch", "precision", "train_images_per_s", "wall_s", "recipe",
                            "threads"}
    assert json.loads((run / "summary.json").read_text())["top1"] == rows[-1]["test_top1"]
    best = max(r["test_top1"] for r in rows)
    assert summary["best_top1"] == best and summary["precision"] == "fp32"
    assert summary["best_epoch"] == next(r["epoch"] for r in rows if r["test_top1"] == best)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 3 and state["step"] == 0


def test_resume_after_an_epoch_is_exact(tiny_cfg, tmp_path):
    full = tiny_cfg(out=str(tmp_path / "full"))
    train(full)
    part = tiny_cfg(out=str(tmp_path / "part"), stop_after_epochs=1)
    train(part)
    assert len(_metrics(tmp_path / "part")) == 1
    train(tiny_cfg(out=str(tmp_path / "part")), resume=True)
    _same(_weights(tmp_path / "full"), _weights(tmp_path / "part"))
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")


class _StopAtStep(StopRequest):
    """Acts as if SIGTERM arrived during the given (global) step."""

    steps = 0
    at = 6

    @property
    def signum(self):
        type(self).steps += 1
        return signal.SIGTERM if type(self).steps > self.at else None

    @signum.setter
    def signum(self, value):
        pass


def test_signal_mid_epoch_saves_and_resume_is_exact(tiny_cfg, tmp_path, monkeypatch):
    train(tiny_cfg(out=str(tmp_path / "full")))
    monkeypatch.setattr(session, "StopRequest", _StopAtStep)
    with pytest.raises(Interrupted, match="SIGTERM at epoch 2 step 3.*--resume"):
        train(tiny_cfg(out=str(tmp_path / "cut")))
    monkeypatch.undo()
    state = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 3)
    train(tiny_cfg(out=str(tmp_path / "cut")), resume=True)
    _same(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "cut")


# `lkca train` whose process sends itself SIGTERM inside step 9 (epoch 2, step 3 of 6): a real
# signal through the real handler, at a point that does not depend on how fast the machine is.
SIGTERM_AT_STEP_9 = """
import os, signal, sys
from lkca.runtime.session import Session
real, steps = Session.backward_and_step, [0]
def backward_and_step(self, *args, **kwargs):
    steps[0] += 1
    if steps[0] == 9:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(self, *args, **kwargs)
Session.backward_and_step = backward_and_step
from lkca.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_to_the_process_then_resume_is_exact(tmp_path):
    """A real `lkca train` process gets SIGTERM mid-epoch, exits cleanly, and resumes exactly."""
    args = ["train", "--model", "lkca_digits", "--epochs", "3", "--batch-size", "32",
            "--device", "cpu", "--no-progress", "--set", "model_args.depth=1",
            "max_steps_per_epoch=6", "warmup_epochs=1", "impl_policy=rule"]  # runs compared

    def run(head, out, *extra):
        return subprocess.run([sys.executable, *head, *args, "--out", str(out), *extra],
                              capture_output=True, text=True, timeout=300)

    assert run(["-m", "lkca"], tmp_path / "full").returncode == 0
    cut = run(["-c", SIGTERM_AT_STEP_9], tmp_path / "cut")
    assert cut.returncode == 2 and "Traceback" not in cut.stderr, cut.stderr
    assert "stopped by SIGTERM at epoch 2 step 3" in cut.stderr
    assert len(_metrics(tmp_path / "cut")) == 1  # epoch 1 logged, epoch 2 not finished
    resumed = run(["-m", "lkca"], tmp_path / "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    _same(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "cut")


def test_eval_reproduces_the_final_accuracy(tiny_cfg, tmp_path, capsys):
    summary = train(tiny_cfg(epochs=1))
    ckpt = tmp_path / "run" / "checkpoints" / "last.safetensors"
    assert main(["eval", "--checkpoint", str(ckpt), "--device", "cpu"]) == 0
    assert f"top-1 {summary['top1']:.2f}%" in capsys.readouterr().out


def test_eval_of_a_run_names_the_checkpoint_it_evaluated(tiny_cfg, tmp_path, capsys):
    """A run directory stands for its best checkpoint: eval says so and how to take the last."""
    summary = train(tiny_cfg(epochs=2))
    run, ck = tmp_path / "run", tmp_path / "run" / "checkpoints"
    assert main(["eval", "--checkpoint", str(run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert (f"evaluating {ck / 'best.safetensors'} (the run's best epoch; for its last epoch "
            f"pass --checkpoint {ck / 'last.safetensors'})") in out
    assert f"top-1 {summary['best_top1']:.2f}%" in out


def test_eval_of_a_model_that_records_no_data_set_is_refused(tmp_path, capsys):
    """An untrained model saved with save_pretrained names no test set: eval asks for one
    instead of evaluating on digits."""
    import lkca

    model = lkca.create_model("vit_lkca_500k", img_size=8, depth=1, dim=16, num_heads=2)
    lkca.save_pretrained(model, tmp_path / "m")
    assert main(["eval", "--checkpoint", str(tmp_path / "m"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "records no data set" in err and "--dataset D" in err


def test_resume_without_checkpoint_is_a_clear_error(tiny_cfg):
    with pytest.raises(ValueError, match="no checkpoint at .*start without --resume"):
        train(tiny_cfg(), resume=True)


@pytest.mark.slow
def test_default_recipe_learns_digits(tmp_path):
    """The embedded default job with a smaller budget (8 of 20 epochs) already passes 90%."""
    cfg = build_config(None, {"epochs": 8, "out": str(tmp_path / "d"), "progress": False})
    summary = train(cfg)
    assert summary["top1"] >= 90.0, summary


def _poison_loss(monkeypatch, at_call: int) -> dict[str, int]:
    """The engine's loss made NaN at its ``at_call``-th call (the calls counted in the returned
    dict, which a test may reset)."""
    real = engine.mixed_cross_entropy
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == at_call else loss

    monkeypatch.setattr(engine, "mixed_cross_entropy", poisoned)
    return calls


def test_nonfinite_loss_stops_and_keeps_the_last_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    train(tiny_cfg(epochs=2, stop_after_epochs=1))
    saved = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    calls = _poison_loss(monkeypatch, at_call=2)
    with pytest.raises(NonFiniteLoss, match="non-finite loss at epoch 2 step 2"):
        train(tiny_cfg(epochs=2), resume=True)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == saved
    calls["n"] = 0
    train(tiny_cfg(epochs=2, skip_nonfinite=True), resume=True)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["skipped_nonfinite"] == 1


def test_crafted_pickle_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    torch.save({"epoch": 1, "x": Payload()}, path)
    from lkca.checkpoint.files import load_state

    with pytest.raises(ValueError, match="refused"):
        load_state(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is real: an unsafe load runs it
    assert marker.exists()


def test_same_seed_gives_bit_identical_weights_on_cpu(tiny_cfg, tmp_path):
    train(tiny_cfg(epochs=1, out=str(tmp_path / "a")))
    train(tiny_cfg(epochs=1, out=str(tmp_path / "b")))
    train(tiny_cfg(epochs=1, out=str(tmp_path / "c"), seed=1))
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    _same(a, b)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_a_bad_step_between_checks_stops_naming_it_and_later_steps_change_nothing(
        tiny_cfg, tmp_path, monkeypatch):
    """With a check every 2 steps, a NaN loss at step 3 of 4 (epoch 1) is learnt at the check
    after step 4: the message names step 3, and nothing after the check before it (step 2) was
    applied: the weights at the raise equal those after step 2 of an unpoisoned run."""
    monkeypatch.setattr(engine, "CHECK_EVERY", 2)

    real_check, models, weights = NonFiniteSteps.check, [], []

    def check(self, where):  # the weights each check finds
        weights.append({k: v.clone() for k, v in models[-1].state_dict().items()})
        return real_check(self, where)

    real_build = engine.build_model

    def build(*args, **kwargs):  # the last one built is the run's (the first: a memory probe)
        model = real_build(*args, **kwargs)
        models.append(model)
        return model

    monkeypatch.setattr(NonFiniteSteps, "check", check)
    monkeypatch.setattr(engine, "build_model", build)
    _poison_loss(monkeypatch, at_call=3)
    with pytest.raises(NonFiniteLoss, match="non-finite loss at epoch 1 step 3, before any"):
        train(tiny_cfg(epochs=1))
    at_step_2, at_raise = weights
    _same(at_step_2, at_raise)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_ema_run_resumes_exactly(tiny_cfg, tmp_path):
    train(tiny_cfg(out=str(tmp_path / "full"), ema_decay=0.9))
    train(tiny_cfg(out=str(tmp_path / "part"), ema_decay=0.9, stop_after_epochs=1))
    train(tiny_cfg(out=str(tmp_path / "part"), ema_decay=0.9), resume=True)
    full, part = (torch.load(tmp_path / d / "checkpoints" / "last.pt", weights_only=True)["ema"]
                  for d in ("full", "part"))
    _same(full, part)
    assert int(full["n_averaged"]) == 3 * 4  # every step averaged in
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")
