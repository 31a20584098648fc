"""The mixer-layout ablation script (benchmarks/ablation_layout.py) keeps working."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation_layout",
                                                  ROOT / "benchmarks" / "ablation_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_have_about_the_same_parameter_budget(ablation):
    from lkca import create_model

    params = {}
    for name, (_, args) in ablation.VARIANTS.items():
        model = create_model(ablation.BASE_MODEL, num_classes=10, img_size=8, **args)
        params[name] = sum(p.numel() for p in model.parameters())
    assert set(model.layout) == {"L"}  # the last variant: LKCA with projections
    assert max(params.values()) / min(params.values()) < 1.06, params
    assert all(450_000 < p < 520_000 for p in params.values()), params


def test_one_cell_trains_through_the_engine_and_is_summarised(ablation, tmp_path):
    row = ablation.run_cell("alternate", 0, out=tmp_path, epochs=1, max_steps_per_epoch=2,
                            model_args={"dim": 16, "num_heads": 2, "depth": 2})
    assert row["variant"] == "alternate" and 0.0 <= row["top1"] <= 100.0
    cfg = json.loads(json.dumps(ablation.run_config("alternate", 0).model_args))
    assert cfg == {"depth": 12, "mixers": "alternate"}
    runs = [row, dict(row, seed=1, top1=row["top1"] + 2.0, best_top1=row["best_top1"] + 2.0)]
    data = {"runs": runs, "settings": {"dataset": "digits", "epochs": 1, "seeds": [0, 1]}}
    path = tmp_path / "ablation.json"
    ablation.write_results(path, data)
    summary = json.loads(path.read_text())["variants"]["alternate"]
    assert summary["seeds"] == 2 and summary["top1_mean"] == pytest.approx(row["top1"] + 1.0)
    assert summary["top1_std"] == pytest.approx(2 ** 0.5)
    ablation.plot(data, tmp_path / "ablation.png")
    assert (tmp_path / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
