"""SIGKILL at random moments (and during a checkpoint write), then resume: the final weights and
metrics equal an uninterrupted run's, and no checkpoint is ever half-written."""

import pytest

CONFIG = """dataset: digits
model: vit_lkca_500k
model_args: {depth: 2, dim: 32, num_heads: 2, mixers: LA}
epochs: 10
warmup_epochs: 1
batch_size: 32
max_steps_per_epoch: 6
device: cpu
progress: false
"""


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path, crash_kit):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    crash_kit.killed_run_equals_uninterrupted(["train", "--config", str(cfg)], tmp_path)


# --- a kill at every write boundary (in-process: the hook raises where a real kill would land) ---

BOUNDARY_RUN = dict(model="vit_lkca_500k", model_args={"depth": 1, "dim": 16, "num_heads": 2},
                    dataset="digits", epochs=2, warmup_epochs=0, batch_size=32,
                    max_steps_per_epoch=1, autoaugment="none", hflip=False, erasing_p=0.0,
                    mix_prob=0.0, drop_path=0.0, progress=False, device="cpu", impl_policy="rule")
# the atomic writes of that run, in order: config.yaml, impl_choices.json, then per epoch
# metrics.jsonl, best.safetensors (when best), last.safetensors, last.pt, then pretrained/
# model.safetensors + config.json and summary.json; this seeded run improves in both epochs, so
# both write best.safetensors
BOUNDARIES = 13


class _Killed(BaseException):
    """Stands for SIGKILL right after a completed write (the files on disk are exactly those)."""


def _train(out, monkeypatch, kill_after=None) -> list[str]:
    from lkca import atomic_files as files
    from lkca.train.config import TrainConfig
    from lkca.train.engine import train

    written: list[str] = []

    def after_write(path):
        written.append(path.name)
        if len(written) == kill_after:
            raise _Killed

    monkeypatch.setattr(files, "_after_write", after_write)
    try:
        # no checkpoint yet: the killed start's files are a run, which only overwrite starts over
        resume = (out / "checkpoints" / "last.pt").exists()
        train(TrainConfig(**BOUNDARY_RUN, out=str(out)), resume=resume,
              overwrite=out.exists() and not resume)
    except _Killed:
        # a real kill runs no cleanup: had a `finally` or handler committed a file on the way
        # out, this stand-in would be kinder than SIGKILL
        assert len(written) == kill_after, f"written after the kill point: {written[kill_after:]}"
        raise
    return written


def _outcome(run) -> dict:
    import json

    import torch
    from safetensors.torch import load_file

    weights = {name: load_file(str(run / name))
               for name in ("checkpoints/last.safetensors", "checkpoints/best.safetensors",
                            "pretrained/model.safetensors")}
    summary = json.loads((run / "summary.json").read_text())
    return {"weights": {n: {k: v.tolist() for k, v in w.items()} for n, w in weights.items()},
            "metrics": _metrics(run), "top1": summary["top1"], "best_top1": summary["best_top1"],
            "best_is_pretrained": all(torch.equal(weights["checkpoints/best.safetensors"][k], v)
                                      for k, v in weights["pretrained/model.safetensors"].items())}


def _metrics(run) -> list[dict]:
    import json

    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "per_s" not in k} for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    out = tmp_path_factory.mktemp("boundary") / "ref"
    try:
        written = _train(out, monkeypatch)
    finally:
        monkeypatch.undo()
    assert len(written) == BOUNDARIES, written
    return _outcome(out)


@pytest.mark.slow  # 13 cases of two short runs each (about 30 s on a quiet 2-core machine)
@pytest.mark.parametrize("boundary", range(1, BOUNDARIES + 1))
def test_a_kill_at_every_write_boundary_then_resume_equals_uninterrupted(
        boundary, uninterrupted, tmp_path, monkeypatch):
    from lkca.checkpoint.files import load_state, read_weights

    out = tmp_path / "run"
    with pytest.raises(_Killed):
        _train(out, monkeypatch, kill_after=boundary)
    ck = out / "checkpoints"
    if (ck / "last.pt").exists():  # whatever is committed is whole and agrees
        state = load_state(ck / "last.pt")
        assert (ck / "best.safetensors").exists()  # the best epoch's weights precede last.pt
        rows = _metrics(out)
        assert [r["epoch"] for r in rows][: state["epoch"]] == list(range(1, state["epoch"] + 1))
        assert max(r["test_top1"] for r in rows[: state["epoch"]]) == state["best_top1"]
    for f in ck.glob("*.safetensors"):
        read_weights(f)
    _train(out, monkeypatch)
    assert _outcome(out) == uninterrupted
    assert not list(ck.glob(".*.tmp"))
