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
    for name, (_, model_name, args) in ablation.VARIANTS.items():
        model = create_model(model_name, num_classes=10, img_size=8, **args)
        params[name] = sum(p.numel() for p in model.parameters())
        if name.startswith("attn_lkca"):
            assert set(model.layout) == {"H"}  # the three-sub-layer block in every block
    assert max(params.values()) / min(params.values()) < 1.07, params
    assert all(450_000 < p < 520_000 for p in params.values()), params


def test_recipe_and_model_overrides_reach_the_run_config(ablation):
    assert ablation.parse_assignments(["epochs=3", "lr=1e-3", "init=spt", "x=[1, 2]"]) == {
        "epochs": 3, "lr": 1e-3, "init": "spt", "x": [1, 2]}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        ablation.parse_assignments(["epochs"])
    cfg = ablation.run_config("attn_lkca_block", 0, recipe={"lr": 1e-3, "batch_size": 32},
                              model_args={"init": "spt", "drop_path_schedule": "constant"})
    assert (cfg.lr, cfg.batch_size, cfg.model) == (1e-3, 32, "vit_lkca_500k")
    assert cfg.model_args == {**ablation.OLD_SHAPE, "depth": 9, "mixers": "attn_lkca",
                              "kernel_heads": 1, "init": "spt", "drop_path_schedule": "constant"}
    # the paper-faithful recipe's command in docs/ablation.md
    spt = ablation.run_config("lkca", 0, recipe=ablation.parse_assignments(
        ["epochs=7", "warmup_epochs=1", "epoch_passes=3", "weight_decay_1d=true"]))
    assert (spt.epochs, spt.warmup_epochs, spt.epoch_passes, spt.weight_decay_1d) == (7, 1, 3.0, True)
    assert (spt.batch_size, spt.lr, spt.erasing_p) == (64, 2e-3, 0.0)  # the rest: DIGITS_DEFAULTS
    from lkca.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config key 'lrr'"):
        ablation.run_config("lkca", 0, recipe={"lrr": 1.0})


def test_one_cell_trains_through_the_engine_and_is_summarised(ablation, tmp_path):
    row = ablation.run_cell("attn_lkca_block", 0, out=tmp_path, epochs=1, max_steps_per_epoch=2,
                            model_args={"dim": 16, "num_heads": 2, "depth": 2})
    assert row["variant"] == "attn_lkca_block" and 0.0 <= row["top1"] <= 100.0
    assert row["epoch_s"] > 0 and row["train_images_per_s"] > 0
    cfg = json.loads(json.dumps(ablation.run_config("alternate", 0).model_args))
    assert cfg == {**ablation.OLD_SHAPE, "depth": 12, "mixers": "alternate"}
    runs = [row, dict(row, seed=1, top1=row["top1"] + 2.0, best_top1=row["best_top1"] + 2.0,
                      epoch_s=row["epoch_s"] + 1.0)]
    data = {"runs": runs, "settings": {"dataset": "digits", "epochs": 1, "seeds": [0, 1]}}
    path = tmp_path / "ablation.json"
    ablation.write_results(path, data)
    summary = json.loads(path.read_text())["variants"]["attn_lkca_block"]
    assert summary["seeds"] == 2 and summary["top1_mean"] == pytest.approx(row["top1"] + 1.0)
    assert summary["top1_std"] == pytest.approx(2 ** 0.5)
    assert summary["epoch_s_std"] == pytest.approx(2 ** 0.5 / 2)
    ablation.plot(data, tmp_path / "ablation.png")
    assert (tmp_path / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_0_1_0_results_still_plot(ablation, tmp_path):
    """lkca 0.1.0's five-variant results (committed) keep redrawing with this script."""
    data = json.loads((ROOT / "benchmarks" / "results" / "ablation_layout.json").read_text())
    ablation.plot(data, tmp_path / "old.png")
    assert (tmp_path / "old.png").stat().st_size > 0


def test_the_readings_results_in_the_docs_are_the_json_s():
    """docs/ablation.md's table of the paper-faithful-recipe ablation quotes
    ablation_layout_readings_spt_recipe.json: every variant's params, mean ± std and per-seed
    finals, the seconds per epoch, and the recipe it ran."""
    data = json.loads((ROOT / "benchmarks" / "results"
                       / "ablation_layout_readings_spt_recipe.json").read_text())
    doc = (ROOT / "docs" / "ablation.md").read_text()
    assert data["settings"]["recipe_overrides"] == {"epochs": 7, "warmup_epochs": 1,
                                                    "epoch_passes": 3, "weight_decay_1d": True}
    for variant, v in data["variants"].items():
        (line,) = [ln for ln in doc.splitlines() if ln.startswith(f"| `{variant}`:")]
        cells = [c.strip().strip("*") for c in line.split("|")[2:-1]]
        finals = ", ".join(f"{r['top1']:.2f}" for r in data["runs"] if r["variant"] == variant)
        assert cells == [f"{v['params']:,}", f"{v['top1_mean']:.2f} ± {v['top1_std']:.2f}",
                         f"{v['best_top1_mean']:.2f} ± {v['best_top1_std']:.2f}", finals,
                         f"{v['epoch_s_mean']:.1f} ± {v['epoch_s_std']:.1f}"], variant
        assert v["seeds"] == 3
