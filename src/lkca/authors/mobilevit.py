"""The authors' MobileViT ("mbv2") (``models/mobilevitv2.py``) -> our MobileViTv2: no position
table, so the image size stays our default. The converter is :data:`LAYOUTS`."""

from __future__ import annotations

from collections.abc import Callable

from lkca.authors import substitute as keys
from lkca.models.baselines.mobilevitv2 import MobileViT, MobileViTConfig


def mobilevit_from_authors(sd: keys.StateDict) -> keys.StateDict:
    """The authors' ``MobileViT`` (models/mbvit.py, the "mbv2" rows) -> our :class:`MobileViT`."""
    f = "MobileViT"
    out = [keys.get(sd, f"mv2.{i}.conv.6.weight", f).shape[0] for i in range(7)]  # c1..c4, c6, c8
    c0 = keys.get(sd, "conv1.0.weight", f).shape[0]
    channels = (c0, out[0], out[1], out[2], out[4], out[4], out[5], out[5], out[6], out[6],
                keys.get(sd, "conv2.0.weight", f).shape[0])
    dims = tuple(keys.get(sd, f"mvit.{i}.conv2.0.weight", f).shape[0] for i in range(3))
    depths = tuple(keys.count(sd, rf"mvit\.{i}\.transformer\.layers\.(\d+)\.") for i in range(3))
    ratios = tuple(keys.get(sd, f"mvit.{i}.transformer.layers.0.1.fn.net.0.weight", f).shape[0] // d
                   for i, d in enumerate(dims))
    cfg = MobileViTConfig(num_classes=keys.get(sd, "fc.weight", f).shape[0], dims=dims,
                          channels=channels, depths=depths, mlp_ratios=ratios,
                          expansion=keys.get(sd, "mv2.0.conv.0.weight", f).shape[0] // c0)
    rules: keys.Rules = [(r"^conv1\.", "stem."), (r"^conv2\.", "head_conv."), (r"^fc\.", "head."),
             (r"^(mv2\.\d+)\.conv\.([012])\.", r"\1.expand.\2."),
             (r"^(mv2\.\d+)\.conv\.([345])\.", lambda m: f"{m[1]}.depthwise.{int(m[2]) - 3}."),
             (r"^(mv2\.\d+)\.conv\.([67])\.", lambda m: f"{m[1]}.project.{int(m[2]) - 6}."),
             (r"\.conv1\.", ".local."), (r"\.conv2\.", ".to_tokens."),
             (r"\.conv3\.", ".from_tokens."), (r"\.conv4\.", ".fuse."),
             (r"\.transformer\.layers\.(\d+)\.0\.norm\.", r".blocks.\1.attn.norm."),
             (r"\.transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.", r".blocks.\1.attn.qkv."),
             (r"\.transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.", r".blocks.\1.attn.proj."),
             (r"\.transformer\.layers\.(\d+)\.1\.norm\.", r".blocks.\1.ff.norm."),
             (r"\.transformer\.layers\.(\d+)\.1\.fn\.net\.0\.", r".blocks.\1.ff.fc1."),
             (r"\.transformer\.layers\.(\d+)\.1\.fn\.net\.3\.", r".blocks.\1.ff.fc2.")]
    return keys.convert(sd, f, keys.build(MobileViT, cfg, f), rules)


LAYOUTS: dict[str, Callable[[keys.StateDict], keys.StateDict]] = {"mobilevitv2_": mobilevit_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "mobilevit_from_authors"]
