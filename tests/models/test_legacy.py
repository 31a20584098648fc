"""Checkpoints of lkca 0.1.0 still load: ``legacy_model`` / ``legacy_backbone`` rebuild exactly
what 0.1.0 built (tests/models/data/lkca_0_1_0.json, written by 0.1.0's own code)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import lkca
from lkca.errors import CheckpointError
from lkca.models.registry import REBUILT_SINCE_0_1_0, legacy_model
from lkca.models.vit import VisionTransformer, ViTConfig
from lkca.seg.backbone import create_backbone, legacy_backbone

DATA = Path(__file__).with_name("data")
CASES = json.loads((DATA / "lkca_0_1_0.json").read_text())["cases"]
_spec = importlib.util.spec_from_file_location("make_lkca_0_1_0", DATA / "make_lkca_0_1_0.py")
fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture)


def _id(case):
    return f"{case['name']}-{json.dumps(case['overrides'], sort_keys=True)}"


def _build_vit(case):
    name, overrides = legacy_model(case["name"], case["overrides"])
    if name is None:  # a config.json with "model": null holds the whole ViTConfig
        return VisionTransformer(ViTConfig(img_size=case["img_size"],
                                           num_classes=case["num_classes"], **overrides))
    return lkca.create_model(name, num_classes=case["num_classes"], img_size=case["img_size"],
                             **overrides)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "vit"], ids=_id)
def test_a_0_1_0_vit_family_model_is_rebuilt_exactly(case):
    model = _build_vit(case).eval()
    assert fixture.layout(model) == {"params": case["params"], "layout": case["layout"]}
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(state, strict=True)  # the 0.1.0 keys and shapes, nothing more
    fixture.fill(model)  # the same values 0.1.0 had at every key
    with torch.no_grad():
        out = model(fixture.inputs(case["img_size"])).flatten()
    expected = torch.tensor(case["output"])
    torch.testing.assert_close(out, expected, atol=1e-4 * expected.abs().max().item(), rtol=1e-4)


def test_every_0_1_0_comparison_model_is_refused():
    assert {c["name"] for c in CASES if c["kind"] == "baseline"} <= REBUILT_SINCE_0_1_0


@pytest.mark.parametrize("case", [c for c in CASES if c["name"] in REBUILT_SINCE_0_1_0], ids=_id)
def test_a_0_1_0_comparison_model_rebuilt_since_is_refused_in_one_line(case):
    """Every comparison model is now the authors' architecture: 0.1.0's weights (its layout is
    recorded in the fixture) do not fit, and loading says so."""
    model = lkca.create_model(case["name"])
    assert fixture.layout(model) != {"params": case["params"], "layout": case["layout"]}
    with pytest.raises(CheckpointError, match=f"^{case['name']} of lkca 0.1.0 .* load it with "
                                              "lkca 0.1.0$"):
        legacy_model(case["name"], case["overrides"], written_by="0.1.0")  # as its record says
    # a record that names no version (or, impossibly, this one): never the running version
    for written_by in (None, lkca.__version__):
        with pytest.raises(CheckpointError, match=f"^{case['name']} of an lkca before "
                                                  f"{lkca.__version__} .* load it with an lkca "
                                                  f"before {lkca.__version__}$"):
            legacy_model(case["name"], case["overrides"], written_by=written_by)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "seg"], ids=_id)
def test_a_0_1_0_segmentation_backbone_is_rebuilt_exactly(case):
    name, overrides = legacy_backbone(case["name"], case["overrides"])
    model = create_backbone(name, **overrides).eval()
    assert fixture.layout(model) == {"params": case["params"], "layout": case["layout"]}
    fixture.fill(model)
    with torch.no_grad():
        maps = model(fixture.inputs(64))
    out = torch.tensor([float(m.sum()) for m in maps] + maps[-1].flatten()[:16].tolist())
    expected = torch.tensor(case["output"])
    torch.testing.assert_close(out, expected, atol=1e-4 * expected.abs().max().item(), rtol=1e-4)


def test_the_0_1_0_state_dict_of_lkca_b_loads_strictly_into_the_legacy_name(tmp_path):
    """What a 0.1.0 checkpoint of lkca_b holds (LKCA-only, 18 blocks, kernel per head, 64-row
    position table) loads into the model ``legacy_model("vit_lkca_2p7m", {})`` names, and not
    into today's ``vit_lkca_2p7m`` (another architecture under that name now)."""
    old = VisionTransformer(ViTConfig(dim=192, depth=18, num_heads=12, mixers="lkca", pool="mean",
                                      init="trunc_normal", drop_path_schedule="linear"))
    torch.save(old.state_dict(), tmp_path / "old.pt")
    state = torch.load(tmp_path / "old.pt", weights_only=True)
    name, overrides = legacy_model("vit_lkca_2p7m", {})
    lkca.create_model(name, **overrides).load_state_dict(state, strict=True)
    with pytest.raises(RuntimeError, match="Missing key"):
        lkca.create_model("vit_lkca_2p7m").load_state_dict(state, strict=True)


def test_legacy_mapping_keeps_the_stored_overrides_and_pins_0_1_0_settings():
    lkca_only = {"mixers": "lkca", "pool": "mean", "kernel_heads": None, "lkca_projections": False,
                 "head_norm": "tokens", "init": "trunc_normal", "drop_path_schedule": "linear"}
    assert legacy_model("vit_lkca_500k", {"depth": 6}) == (
        "vit_lkca_500k", {"dim": 80, "depth": 6, "num_heads": 5, "mlp_ratio": 2.0, **lkca_only})
    assert legacy_model("lkca_l", {}) == (
        "vit_lkca_12m", {"dim": 384, "depth": 21, "num_heads": 12, "mlp_ratio": 2.0, **lkca_only})
    assert legacy_model("vit_lkca_500k", {"lkca_projections": True})[1]["lkca_value_bias"] is True
    assert legacy_model("vit_small", {"drop_path_rate": 0.1}) == (
        "vit_2p7m", {"dim": 192, "depth": 9, "num_heads": 12, "mlp_ratio": 2.0,
                     "cls_pos_embed": False, "init": "trunc_normal",
                     "drop_path_schedule": "linear", "drop_path_rate": 0.1})
    assert legacy_model("lkca_digits", {"dim": 8}) == ("lkca_digits", {"dim": 8})  # no 0.1.0 twin
    assert legacy_backbone("lkca_s_seg", {"dim": 768}) == (
        "lkca_s_seg", {"kernel_heads": None, "dim": 768})
    assert legacy_backbone("vit_s_seg", {}) == ("vit_s_seg", {})
