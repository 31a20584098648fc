"""``precision: fp32 | tf32 | bf16 | fp16``: the forward's autocast (tf32: none, TF32 arithmetic),
recorded, and refused as a change on --resume (docs/recipe.md, "Precision")."""

from __future__ import annotations

import json

import pytest
import torch

from lkca.config import parse_overrides
from lkca.errors import ConfigError
from lkca.runtime.device import mixed_precision
from lkca.train.config import build_config
from lkca.train.engine import train


def _autocast_dtypes(monkeypatch) -> list[torch.dtype | None]:
    """Record, at every model forward, the autocast dtype in force on the CPU (None: off)."""
    seen: list[torch.dtype | None] = []
    real = mixed_precision

    def spy(device, precision):
        ctx = real(device, precision)
        seen.append(None if precision in ("fp32", "tf32") else ctx.fast_dtype)  # type: ignore[attr-defined]
        return ctx

    monkeypatch.setattr("lkca.runtime.session.mixed_precision", spy)
    return seen


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", None), ("tf32", None),
                                                  ("bf16", torch.bfloat16)])
def test_training_runs_in_the_configured_precision(tiny_cfg, tmp_path, monkeypatch,
                                                   precision: str, dtype) -> None:
    seen = _autocast_dtypes(monkeypatch)
    summary = train(tiny_cfg(precision=precision, epochs=2))
    assert seen and set(seen) == {dtype}
    assert summary["precision"] == precision
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["precision"] == precision
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in rows)


def test_bf16_logits_are_bf16_on_cpu() -> None:
    lin = torch.nn.Linear(4, 4)
    with mixed_precision(torch.device("cpu"), "bf16"):
        assert lin(torch.randn(2, 4)).dtype == torch.bfloat16
    with mixed_precision(torch.device("cpu"), "fp32"):
        assert lin(torch.randn(2, 4)).dtype == torch.float32


def test_precision_from_yaml_and_set_and_refused_on_resume(tiny_cfg, tmp_path) -> None:
    cfg = tiny_cfg(stop_after_epochs=1, epochs=2)
    train(cfg)
    with pytest.raises(ConfigError, match="precision differs"):
        train(tiny_cfg(epochs=2, precision="bf16"), resume=True)
    with pytest.raises(ConfigError, match="precision differs"):
        train(tiny_cfg(epochs=2, precision="tf32"), resume=True)
    with pytest.raises(ConfigError, match="precision must be one of fp32, tf32, bf16, fp16"):
        tiny_cfg(precision="fp64")
    config = tmp_path / "c.yaml"
    config.write_text("precision: bf16\ndataset: digits\n")
    assert build_config(config).precision == "bf16"
    assert build_config(config, sets=parse_overrides(["precision=fp16"])).precision == "fp16"


def test_a_run_from_before_precision_resumes_as_it_ran(tiny_cfg, tmp_path) -> None:
    # its checkpoint's config has no precision: on CPU it ran in fp32, so fp32 continues it
    from lkca.checkpoint.files import load_state, save_state

    train(tiny_cfg(stop_after_epochs=1, epochs=2))
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = load_state(last)
    del state["config"]["precision"]
    save_state(last, state)
    assert train(tiny_cfg(epochs=2), resume=True)["precision"] == "fp32"
