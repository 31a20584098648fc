"""Write ``lkca_0_1_0.json`` beside this file: what lkca 0.1.0 built for each model name.

Run once with an lkca 0.1.0 checkout first on the path (the file is committed; tests read it):

    PYTHONPATH=/path/to/lkca-0.1.0/src python tests/models/data/make_lkca_0_1_0.py

For every case: the name and overrides as 0.1.0 stored them, its state-dict layout (a digest of
the sorted key/shape list, and the parameter count) and, for the ViT family and the segmentation
backbones, the output on a fixed input after filling every tensor with :func:`fill` (seeded by
its key, so any version that builds the same keys fills the same values).
tests/models/test_legacy.py rebuilds each case with ``legacy_model`` / ``legacy_backbone`` and
checks the layout and, where recorded, the outputs.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

OUT = Path(__file__).with_name("lkca_0_1_0.json")
# (name, overrides, img_size, num_classes) run forward; baselines are checked by layout only.
VIT_CASES: list[tuple[str | None, dict[str, Any], int, int]] = [
    *[(f"vit_{s}", {}, 32, 10) for s in ("500k", "1m", "2m", "2p7m", "4m", "8m")],
    *[(f"vit_lkca_{s}", {}, 32, 10) for s in ("500k", "1m", "2m", "2p7m", "4m", "8m")],
    ("vit_lkca_12m", {}, 64, 200),
    ("lkca_b", {}, 32, 100),  # an alias, as a config may name it
    ("vit_lkca_500k", {"depth": 6}, 8, 10),  # the digits demo (DIGITS_DEFAULTS)
    ("vit_lkca_500k", {"depth": 12, "mixers": "alternate"}, 8, 10),  # the layout ablation
    ("vit_lkca_500k", {"depth": 12, "mixers": "lkca", "lkca_projections": True}, 8, 10),
    ("vit_lkca_500k", {"depth": 9, "mixers": "attn"}, 8, 10),
    # a VisionTransformer built directly: config.json holds its whole ViTConfig ("model": null)
    (None, {"dim": 32, "depth": 2, "num_heads": 2, "mixers": "attn", "pool": "cls"}, 32, 10),
]
SEG_CASES = [(b, {"depth": 4, "dim": 32, "num_heads": 2, "img_size": 64})
             for b in ("vit_s_seg", "lkca_s_seg")]


def fill(model: nn.Module) -> None:
    """Every parameter and buffer from N(0, 0.05^2), seeded by the CRC32 of its state-dict key."""
    with torch.no_grad():
        for key, tensor in model.state_dict(keep_vars=True).items():
            if tensor.is_floating_point():
                gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.05)


def layout(model: nn.Module) -> dict[str, Any]:
    """Parameter count and a digest of the sorted (key, shape) list of the state dict."""
    items = sorted((k, list(v.shape)) for k, v in model.state_dict().items())
    digest = hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]
    return {"params": sum(p.numel() for p in model.parameters()), "layout": digest}


def inputs(img_size: int) -> torch.Tensor:
    return torch.randn(2, 3, img_size, img_size, generator=torch.Generator().manual_seed(0))


def main() -> None:
    import dataclasses

    import lkca
    from lkca.models.vit import VisionTransformer, ViTConfig
    from lkca.seg.backbone import create_backbone

    cases = []
    for name, overrides, img, classes in VIT_CASES:
        if name is None:
            cfg = ViTConfig(img_size=img, num_classes=classes, **overrides)
            model: nn.Module = VisionTransformer(cfg)
            overrides = {k: v for k, v in dataclasses.asdict(cfg).items()
                         if k not in ("img_size", "num_classes")}
        else:
            model = lkca.create_model(name, num_classes=classes, img_size=img, **overrides)
        fill(model)
        with torch.no_grad():
            out = model.eval()(inputs(img))
        cases.append({"kind": "vit", "name": name, "overrides": overrides, "img_size": img,
                      "num_classes": classes, **layout(model), "output": out.flatten().tolist()})
    for name in lkca.list_models():
        if lkca.models.is_baseline(name):
            cases.append({"kind": "baseline", "name": name, "overrides": {},
                          **layout(lkca.create_model(name))})
    for name, overrides in SEG_CASES:
        model = create_backbone(name, **overrides)
        fill(model)
        with torch.no_grad():
            maps = model.eval()(inputs(64))
        cases.append({"kind": "seg", "name": name, "overrides": overrides, **layout(model),
                      "output": [float(m.sum()) for m in maps] + maps[-1].flatten()[:16].tolist()})
    OUT.write_text(json.dumps({"lkca_version": lkca.__version__, "cases": cases}) + "\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
