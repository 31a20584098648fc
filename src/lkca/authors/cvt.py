"""The authors' CvT (``models/cvt.py``, vit-pytorch's) -> our CvT: embedding strides (4, 2, 2),
key/value stride 2 and heads of 64 channels from the authors' rows; channel LayerNorms reshaped.
The converter is :data:`LAYOUTS`."""

from __future__ import annotations

from collections.abc import Callable

from lkca.authors import substitute as keys
from lkca.models.baselines.cvt import CvT, CvTConfig


def cvt_from_authors(sd: keys.StateDict) -> keys.StateDict:
    """The authors' ``CvT`` (models/cvt.py, vit-pytorch) -> our :class:`CvT`."""
    f = "CvT"
    n = keys.count(sd, r"layers\.(\d+)\.0\.weight")
    if n != 3:
        raise keys.fail(f, f"{n} stages; the authors' CvT has 3")
    embeds = [keys.get(sd, f"layers.{i}.0.weight", f) for i in range(n)]  # (dim, c_in, k, k)
    inner = [keys.get(sd, f"layers.{i}.2.layers.0.0.to_q.net.2.weight", f).shape[0] for i in range(n)]
    dim_head = CvTConfig.dim_head
    cfg = CvTConfig(in_chans=embeds[0].shape[1], num_classes=keys.get(sd, "to_logits.2.weight", f).shape[0],
                    dims=tuple(e.shape[0] for e in embeds),
                    embed_kernels=tuple(e.shape[2] for e in embeds),
                    num_heads=tuple(i // dim_head for i in inner),
                    depths=tuple(keys.count(sd, rf"layers\.{i}\.2\.layers\.(\d+)\.") for i in range(n)),
                    mlp_ratio=keys.get(sd, "layers.0.2.layers.0.1.net.1.weight", f).shape[0]
                    // embeds[0].shape[0],
                    proj_kernel=keys.get(sd, "layers.0.2.layers.0.0.to_q.net.0.weight", f).shape[-1])
    rules: keys.Rules = [(r"^layers\.(\d+)\.0\.", r"stages.\1.embed."),
             (r"^layers\.(\d+)\.1\.g$", r"stages.\1.embed_norm.weight"),
             (r"^layers\.(\d+)\.1\.b$", r"stages.\1.embed_norm.bias"),
             (r"^layers\.(\d+)\.2\.layers\.(\d+)\.0\.", r"stages.\1.blocks.\2.attn."),
             (r"^layers\.(\d+)\.2\.layers\.(\d+)\.1\.", r"stages.\1.blocks.\2.ff."),
             (r"norm\.g$", "norm.weight"), (r"norm\.b$", "norm.bias"),
             (r"attn\.to_q\.net\.", "attn.q."), (r"attn\.to_kv\.net\.", "attn.kv."),
             (r"attn\.to_out\.0\.", "attn.proj."),
             (r"ff\.net\.0\.g$", "ff.norm.weight"), (r"ff\.net\.0\.b$", "ff.norm.bias"),
             (r"ff\.net\.1\.", "ff.fc1."), (r"ff\.net\.4\.", "ff.fc2."),
             (r"^to_logits\.2\.", "head.")]
    return keys.convert(sd, f, keys.build(CvT, cfg, f), rules, reshape=r"\.(g|b)$")


LAYOUTS: dict[str, Callable[[keys.StateDict], keys.StateDict]] = {"cvt_": cvt_from_authors}
"""Our registered-name prefix -> the converter of the authors' state dict of this family."""

__all__ = ["LAYOUTS", "cvt_from_authors"]
