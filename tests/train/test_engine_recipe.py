"""The training engine under SPT's recipe (docs/recipe.md): epochs of three passes (SPT main.py:98,
:221-223), the schedule counting their steps, exact resume mid-epoch past a pass boundary, the
`recipe` section of summary.json and what `lkca train` prints at start."""

import json
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lkca.data import dataset_info
from lkca.errors import ConfigError
from lkca.runtime import session
from lkca.runtime.signals import Interrupted, StopRequest
from lkca.train.config import TrainConfig, build_config
from lkca.train.engine import build_model, model_meta, train
from lkca.train.optim import build_optimizer, warmup_cosine_lr

N, B = 1437, 500  # digits' training split; 3N = 4311 images -> floor(4311 / 500) = 8 steps


def _cfg(out, **kw):
    values = dict(model="vit_lkca_500k", model_args={"depth": 1, "dim": 16, "num_heads": 2,
                                                     "mixers": "L"},
                  dataset="digits", epochs=2, warmup_epochs=1, batch_size=B, epoch_passes=3,
                  autoaugment="none", hflip=False, crop_padding=1, erasing_p=0.25,
                  mix_prob=0.5, out=str(out), progress=False, device="cpu")
    values.update(kw)
    return TrainConfig(**values)


def _rows(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return out, train(_cfg(out))


def test_three_pass_epoch_steps_and_schedule(full_run):
    out, summary = full_run
    steps = 3 * N // B
    assert summary["recipe"] == {"dataset_size": N, "epoch_passes": 3.0, "batch_size": B,
                                 "steps_per_epoch": steps, "images_per_epoch": steps * B,
                                 "warmup_steps": steps, "total_steps": 2 * steps,
                                 "total_passes": 2 * steps * B / N}
    assert json.loads((out / "summary.json").read_text())["recipe"] == summary["recipe"]
    # the lr after each epoch: warm-up ends after the first epoch's 8 steps, the cosine reaches
    # min_lr at step 16 (SPT utils/scheduler.py:53-62 with warm-up and cycle in those steps)
    lrs = [r["lr"] for r in _rows(out)]
    assert lrs == pytest.approx([warmup_cosine_lr(s, steps, 2 * steps, 1e-3, 1e-6, 1e-6)
                                 for s in (steps, 2 * steps)])
    assert lrs == pytest.approx([1e-3, 1e-6])
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["scheduler"]["last_epoch"] == 2 * steps


class _StopAtStep(StopRequest):
    """Acts as if SIGTERM arrived during global step 11 (epoch 2, step 3: its batch runs from
    the first pass into the second, stream positions 1000..1499 across 1437)."""

    reads = 0

    @property
    def signum(self):
        type(self).reads += 1
        return signal.SIGTERM if type(self).reads > 10 else None

    @signum.setter
    def signum(self, value):
        pass


def test_resume_mid_three_pass_epoch_equals_the_uninterrupted_run(full_run, tmp_path,
                                                                   monkeypatch):
    out, _ = full_run
    monkeypatch.setattr(session, "StopRequest", _StopAtStep)
    with pytest.raises(Interrupted, match="epoch 2 step 3"):
        train(_cfg(tmp_path))
    monkeypatch.undo()
    train(_cfg(tmp_path), resume=True)
    a, b = (load_file(str(d / "checkpoints" / "last.safetensors")) for d in (out, tmp_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(out) == _rows(tmp_path)


def test_start_prints_the_recipe_and_the_projection(tmp_path, capsys):
    train(_cfg(tmp_path, epoch_passes=1, max_steps_per_epoch=1))
    out = capsys.readouterr().out
    assert ("recipe: an epoch is 1 step of 500 (500 images; max_steps_per_epoch caps the full "
            "epoch of 1 x 1437 images = 2 steps); warm-up 1 step, 2 steps in all (0.7 passes over "
            "the data)") in out
    assert "projected:" in out and "for the whole run" in out and "1 epoch left" in out
    train(_cfg(tmp_path / "full", epoch_passes=1, epochs=1, warmup_epochs=0))
    assert ("recipe: an epoch is 1 x 1437 images = 2 steps of 500 (1000 images); warm-up 0 steps, "
            "2 steps in all (0.7 passes over the data)") in capsys.readouterr().out


@pytest.mark.parametrize("name", ["vit_lkca_2p7m", "vit_2p7m"])
def test_paper_configs_train_with_spt_stochastic_depth_init_and_weight_decay(name):
    cfg = build_config(Path(__file__).resolve().parents[2] / "configs/cls/cifar10" / f"{name}.yaml")
    assert (cfg.epoch_passes, cfg.weight_decay_1d, cfg.warmup_lr, cfg.min_lr,
            cfg.erasing_fill) == (3.0, True, 1e-6, 1e-6, "spt")
    model = build_model(model_meta(cfg, dataset_info("cifar10"), 10, 32, 3), cfg.drop_path)
    # SPT models/vit.py:114-119: one DropPath(sd = 0.1) on both branches of every block
    assert {b.drop_path.drop_prob for b in model.blocks} == {0.1}
    assert model.cfg.init == "spt"  # SPT models/vit.py:14-21, :155 (statistics: tests/models)
    # SPT main.py:230: every parameter decays
    groups = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.weight_decay_1d).param_groups
    assert sum(len(g["params"]) for g in groups if g["weight_decay"] == 0.05) == len(
        list(model.parameters()))


def test_resume_with_other_weight_decay_groups_is_a_clear_error(tmp_path):
    """The resume policy refuses a changed recipe key before the optimiser state is touched."""
    train(_cfg(tmp_path, weight_decay_1d=False, max_steps_per_epoch=1, stop_after_epochs=1))
    with pytest.raises(ConfigError, match="weight_decay_1d differs.*config.yaml"):
        train(_cfg(tmp_path, weight_decay_1d=True, max_steps_per_epoch=1), resume=True)


def test_the_projection_skips_the_epoch_that_compiled():
    from lkca.train.engine import projection_line

    # eager: after the first epoch timed, from it (10 s so far, 3 left of 10 s)
    assert projection_line([10.0], False, 3, 10.0) == (
        "projected: 40.0 s for the whole run (10.0 s per epoch on this device, 3 epochs left)")
    assert projection_line([10.0, 9.0], False, 2, 19.0) is None  # printed once
    # --compile: epoch 1 (60 s) compiled, so nothing after it; after epoch 2 (10 s), from epoch 2
    assert projection_line([60.0], True, 3, 60.0) is None
    assert projection_line([60.0, 10.0], True, 2, 70.0) == (
        "projected: 1.5 min for the whole run (10.0 s per epoch on this device, 2 epochs left; "
        "from epoch 2 of this process: epoch 1, 1.0 min, compiled the model)")
    assert projection_line([60.0, 10.0], True, 0, 70.0) is None  # nothing left to project


def test_compile_compiles_the_eval_model_too_and_projects_from_epoch_2(tiny_cfg, monkeypatch,
                                                                        capsys):
    compiled = []
    real = torch.compile

    def spy(model, **kwargs):  # the eager backend: the engine's path, without inductor's wait
        compiled.append(model)
        return real(model, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    train(tiny_cfg(epochs=3, compile=True, ema_decay=0.9))
    assert len(compiled) == 2 and type(compiled[1]).__name__ == "VisionTransformer"
    assert type(compiled[1]) is type(compiled[0]) and compiled[1] is not compiled[0]  # the EMA's
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("projected:")]
    assert len(lines) == 1 and "1 epoch left; from epoch 2 of this process" in lines[0]
