"""The authors' MobileViT ("mbv2") checkpoints -> ours
(:class:`~lkca.models.baselines.mobilevitv2.MobileViT`).

The authors' code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet,
``models/mobilevitv2.py``) saves ``model.state_dict()`` of its own class; :data:`LAYOUTS` maps our
registered-name prefix ``mobilevitv2_`` to :func:`mobilevit_from_authors`: every key renamed by the
substitutions of :mod:`lkca.authors.substitute` and checked against our model built from the shape
the checkpoint implies.
"""

from __future__ import annotations

from collections.abc import Callable

from lkca.authors.substitute import (
    Rules,
    StateDict,
    build,
    convert,
    count,
    get,
)
from lkca.models.baselines.mobilevitv2 import MobileViT, MobileViTConfig


def mobilevit_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``MobileViT`` (models/mbvit.py, the "mbv2" rows) -> our :class:`MobileViT`."""
    f = "MobileViT"
    out = [get(sd, f"mv2.{i}.conv.6.weight", f).shape[0] for i in range(7)]  # c1..c4, c6, c8
    c0 = get(sd, "conv1.0.weight", f).shape[0]
    channels = (c0, out[0], out[1], out[2], out[4], out[4], out[5], out[5], out[6], out[6],
                get(sd, "conv2.0.weight", f).shape[0])
    dims = tuple(get(sd, f"mvit.{i}.conv2.0.weight", f).shape[0] for i in range(3))
    depths = tuple(count(sd, rf"mvit\.{i}\.transformer\.layers\.(\d+)\.") for i in range(3))
    ratios = tuple(get(sd, f"mvit.{i}.transformer.layers.0.1.fn.net.0.weight", f).shape[0] // d
                   for i, d in enumerate(dims))
    cfg = MobileViTConfig(num_classes=get(sd, "fc.weight", f).shape[0], dims=dims,
                          channels=channels, depths=depths, mlp_ratios=ratios,
                          expansion=get(sd, "mv2.0.conv.0.weight", f).shape[0] // c0)
    rules: Rules = [(r"^conv1\.", "stem."), (r"^conv2\.", "head_conv."), (r"^fc\.", "head."),
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
    return convert(sd, f, build(MobileViT, cfg, f), rules)


LAYOUTS: dict[str, Callable[[StateDict], StateDict]] = {"mobilevitv2_": mobilevit_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "mobilevit_from_authors"]
