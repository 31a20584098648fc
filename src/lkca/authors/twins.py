"""Checkpoints of the paper's authors' RvT, XCiT, CrossViT, RegionViT and Twins-SVT in our layout.

The authors' code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet, ``models/rvt.py``,
``xcit.py``, ``crossvit.py``, ``regionvit.py``, ``twins_svt.py``) names its parameters after its
module tree (``transformer.layers.0.0.to_q.conv.net.0.weight``). :data:`LAYOUTS_B` maps each of
our registered-name prefixes to a function taking such a state dict to ours: every key is renamed
by one rule (a key no rule knows is refused), Twins-SVT's channel LayerNorms (1, C, 1, 1) become
(C,), RvT's rotary buffer (``pos_emb.scales``) is checked and dropped (ours computes it), and the
result is checked key by key and shape by shape against our model of the shape the checkpoint
implies (its widths, depths and classes read from the tensors). Attention head counts that leave
no trace in the weights (CrossViT, Twins-SVT: ``heads * dim_head`` only) are taken as the
registered rows' 8. A mismatch raises :class:`AuthorsLayoutError`, one line naming the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from lkca.errors import AuthorsLayoutError
from lkca.models.baselines.crossvit import CrossViT, CrossViTConfig
from lkca.models.baselines.regionvit import RegionViT, RegionViTConfig
from lkca.models.baselines.rvt import RvT, RvTConfig
from lkca.models.baselines.twins import TwinsConfig, TwinsSVT
from lkca.models.baselines.xcit import XCiT, XCiTConfig

Rules = list[tuple[str, str | Callable[[re.Match[str]], str | None]]]


def _foreign(family: str, key: str) -> AuthorsLayoutError:
    return AuthorsLayoutError(f"{family}: key {key!r} is not in the authors' {family} layout; "
                              "pass a state dict saved from their model")


def _rename(sd: dict[str, Tensor], rules: Rules, family: str) -> dict[str, Tensor]:
    """Each key through the first rule whose pattern matches it whole (a callable target returns
    None for a key it does not know); unknown keys raise."""
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        for pattern, target in rules:
            m = re.fullmatch(pattern, key)
            if m:
                new = target(m) if callable(target) else m.expand(target)
                if new is None:
                    raise _foreign(family, key)
                out[new] = value
                break
        else:
            raise _foreign(family, key)
    return out


def _count(sd: dict[str, Tensor], pattern: str) -> int:
    """How many distinct values the one group of ``pattern`` takes over the keys."""
    return len({m.group(1) for k in sd if (m := re.fullmatch(pattern, k))})


def _get(sd: dict[str, Tensor], key: str, family: str) -> Tensor:
    if key not in sd:
        raise AuthorsLayoutError(f"{family}: the checkpoint lacks the authors' tensor for {key!r};"
                                 " pass a complete state dict")
    return sd[key]


def _check_against(model: nn.Module, sd: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """``sd`` if its keys and shapes are exactly ``model``'s, else AuthorsLayoutError."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    if missing:
        raise AuthorsLayoutError(f"{family}: the checkpoint lacks {missing[0]!r} (and "
                                 f"{len(missing) - 1} more) of the shape its other tensors imply")
    extra = sorted(set(sd) - set(expected))
    if extra:
        raise AuthorsLayoutError(f"{family}: {extra[0]!r} does not belong to the shape the "
                                 "checkpoint's other tensors imply")
    for key, ref in expected.items():
        if tuple(sd[key].shape) != tuple(ref.shape):
            raise AuthorsLayoutError(f"{family}: {key!r} has shape {tuple(sd[key].shape)}, the "
                                     f"model the checkpoint implies needs {tuple(ref.shape)}")
    return sd


def _built(cls: type[nn.Module], cfg: Any) -> nn.Module:
    with torch.device("meta"):  # shapes only
        return cls(cfg)


def _patch(pixels: int, family: str) -> int:
    p = math.isqrt(pixels // 3)
    if 3 * p * p != pixels:
        raise AuthorsLayoutError(f"{family}: a patch of {pixels} values is not 3 x p x p pixels")
    return p


# ---- RvT (models/rvt.py) --------------------------------------------------------------------

_RVT: Rules = [
    (r"to_patch_embedding\.1\.(weight|bias)", r"patch_embed.\1"),
    (r"cls_token", "cls_token"),
    (r"transformer\.layers\.(\d+)\.0\.norm\.(weight|bias)", r"blocks.\1.attn.norm.\2"),
    (r"transformer\.layers\.(\d+)\.0\.to_q\.conv\.net\.0\.weight", r"blocks.\1.attn.q.depthwise.weight"),
    (r"transformer\.layers\.(\d+)\.0\.to_q\.conv\.net\.1\.weight", r"blocks.\1.attn.q.pointwise.weight"),
    (r"transformer\.layers\.(\d+)\.0\.to_q\.cls_proj\.(weight|bias)", r"blocks.\1.attn.q.cls_proj.\2"),
    (r"transformer\.layers\.(\d+)\.0\.to_kv\.weight", r"blocks.\1.attn.kv.weight"),
    (r"transformer\.layers\.(\d+)\.0\.to_out\.0\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"transformer\.layers\.(\d+)\.1\.net\.0\.(weight|bias)", r"blocks.\1.ff.norm.\2"),
    (r"transformer\.layers\.(\d+)\.1\.net\.1\.(weight|bias)", r"blocks.\1.ff.fc1.\2"),
    (r"transformer\.layers\.(\d+)\.1\.net\.4\.(weight|bias)", r"blocks.\1.ff.fc2.\2"),
    (r"mlp_head\.0\.(weight|bias)", r"norm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"head.\1"),
]


def rvt_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' RvT state dict -> ours (the rotary ``scales`` buffer checked and dropped)."""
    family = "RvT"
    sd = dict(sd)
    scales = sd.pop("transformer.pos_emb.scales", None)
    if scales is None or scales.dim() != 1 or len(scales) < 1:
        raise AuthorsLayoutError("RvT: the checkpoint lacks the rotary buffer "
                                 "'transformer.pos_emb.scales' of the authors' layout")
    img_size = round(2 * float(scales[-1]))
    expected = torch.linspace(1.0, img_size / 2, len(scales))
    if not torch.allclose(scales.float().cpu(), expected):
        raise AuthorsLayoutError("RvT: 'transformer.pos_emb.scales' is not linspace(1, img_size / "
                                 "2, dim_head / 4) as the authors' rvt.py builds it")
    ours = _rename(sd, _RVT, family)
    kv = _get(ours, "blocks.0.attn.kv.weight", family)
    dim_head = 4 * len(scales)
    cfg = RvTConfig(img_size=img_size, patch_size=_patch(
        _get(ours, "patch_embed.weight", family).shape[1], family),
        num_classes=_get(ours, "head.weight", family).shape[0],
        dim=ours["cls_token"].shape[-1] if "cls_token" in ours else kv.shape[1],
        depth=_count(ours, r"blocks\.(\d+)\..*"), heads=kv.shape[0] // 2 // dim_head,
        dim_head=dim_head, mlp_dim=_get(ours, "blocks.0.ff.fc2.weight", family).shape[1],
        query_kernel=_get(ours, "blocks.0.attn.q.depthwise.weight", family).shape[-1])
    return _check_against(_built(RvT, cfg), ours, family)


# ---- XCiT (models/xcit.py) ------------------------------------------------------------------

_XCIT: Rules = [
    (r"to_patch_embedding\.1\.(weight|bias)", r"patch_norm.\1"),
    (r"to_patch_embedding\.2\.(weight|bias)", r"patch_embed.\1"),
    (r"to_patch_embedding\.3\.(weight|bias)", r"embed_norm.\1"),
    (r"pos_embedding", "pos_embed"),
    (r"cls_token", "cls_token"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.scale", r"blocks.\1.gamma1"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.norm\.(weight|bias)", r"blocks.\1.attn.norm.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.weight", r"blocks.\1.attn.qkv.weight"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.temperature", r"blocks.\1.attn.temperature"),
    (r"xcit_transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.scale", r"blocks.\1.gamma2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)", r"blocks.\1.lpi.norm.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.2\.(weight|bias)", r"blocks.\1.lpi.conv1.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.3\.(\w+)", r"blocks.\1.lpi.bn.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.1\.fn\.net\.5\.(weight|bias)", r"blocks.\1.lpi.conv2.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.scale", r"blocks.\1.gamma3"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.fn\.net\.0\.(weight|bias)", r"blocks.\1.ff.norm.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.fn\.net\.1\.(weight|bias)", r"blocks.\1.ff.fc1.\2"),
    (r"xcit_transformer\.layers\.(\d+)\.2\.fn\.net\.4\.(weight|bias)", r"blocks.\1.ff.fc2.\2"),
    (r"final_norm\.(weight|bias)", r"norm.\1"),
    (r"cls_transformer\.layers\.(\d+)\.0\.scale", r"cls_blocks.\1.gamma1"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.norm\.(weight|bias)", r"cls_blocks.\1.attn.norm.\2"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.to_q\.weight", r"cls_blocks.\1.attn.q.weight"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.to_kv\.weight", r"cls_blocks.\1.attn.kv.weight"),
    (r"cls_transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.(weight|bias)", r"cls_blocks.\1.attn.proj.\2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.scale", r"cls_blocks.\1.gamma2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)", r"cls_blocks.\1.ff.norm.\2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.fn\.net\.1\.(weight|bias)", r"cls_blocks.\1.ff.fc1.\2"),
    (r"cls_transformer\.layers\.(\d+)\.1\.fn\.net\.4\.(weight|bias)", r"cls_blocks.\1.ff.fc2.\2"),
    (r"mlp_head\.0\.(weight|bias)", r"head_norm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"head.\1"),
]


def xcit_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' XCiT state dict -> ours."""
    family = "XCiT"
    ours = _rename(sd, _XCIT, family)
    heads = _get(ours, "blocks.0.attn.temperature", family).shape[0]
    patch = _patch(_get(ours, "patch_norm.weight", family).shape[0], family)
    cfg = XCiTConfig(
        img_size=math.isqrt(_get(ours, "pos_embed", family).shape[1]) * patch, patch_size=patch,
        num_classes=_get(ours, "head.weight", family).shape[0],
        dim=_get(ours, "norm.weight", family).shape[0], depth=_count(ours, r"blocks\.(\d+)\..*"),
        cls_depth=_count(ours, r"cls_blocks\.(\d+)\..*"), heads=heads,
        dim_head=ours["blocks.0.attn.qkv.weight"].shape[0] // 3 // heads,
        mlp_dim=_get(ours, "blocks.0.ff.fc1.weight", family).shape[0],
        lpi_kernel=_get(ours, "blocks.0.lpi.conv1.weight", family).shape[-1])
    return _check_against(_built(XCiT, cfg), ours, family)


# ---- CrossViT (models/crossvit.py) ----------------------------------------------------------

_ATTN = r"norm\.(?:weight|bias)|q\.weight|kv\.weight|proj\.(?:weight|bias)"


def _crossvit_key(m: re.Match[str]) -> str | None:
    block, part, rest = m.group(1), int(m.group(2)), m.group(3)
    if part < 2:  # an encoder: .norm or .layers.{j}.{0 attention, 1 feed-forward}.<...>
        enc = f"blocks.{block}.{('sm', 'lg')[part]}_encoder"
        if rest.startswith("norm."):
            return f"{enc}.{rest}"
        j = re.fullmatch(r"layers\.(\d+)\.([01])\.(.+)", rest)
        if j and j.group(2) == "0":
            return f"{enc}.attns.{j.group(1)}.{_vit_pytorch_attn(j.group(3))}"
        if j:
            return f"{enc}.ffs.{j.group(1)}.{_vit_pytorch_ff(j.group(3))}"
    else:  # cross-attention: .layers.{k}.{0 small, 1 large}.(fn.<attn> | project_in | project_out)
        j = re.fullmatch(r"layers\.(\d+)\.([01])\.(fn\.|project_in\.|project_out\.)(.+)", rest)
        if j:
            cross = f"blocks.{block}.{('sm', 'lg')[int(j.group(2))]}_cross.{j.group(1)}"
            if j.group(3) == "fn.":
                return f"{cross}.attn.{_vit_pytorch_attn(j.group(4))}"
            return f"{cross}.{j.group(3).replace('project_', 'proj_')}{j.group(4)}"
    return None


def _vit_pytorch_attn(rest: str) -> str:
    """vit-pytorch's Attention keys (norm, to_q, to_kv, to_out.0) -> ours."""
    return (rest.replace("to_q.", "q.").replace("to_kv.", "kv.").replace("to_out.0.", "proj."))


def _vit_pytorch_ff(rest: str) -> str:
    """vit-pytorch's FeedForward keys (net.0 LayerNorm, net.1, net.4 Linear) -> ours."""
    return rest.replace("net.0.", "norm.").replace("net.1.", "fc1.").replace("net.4.", "fc2.")


_CROSSVIT: Rules = [
    (r"(sm|lg)_image_embedder\.to_patch_embedding\.1\.(weight|bias)", r"\1_branch.patch_norm.\2"),
    (r"(sm|lg)_image_embedder\.to_patch_embedding\.2\.(weight|bias)", r"\1_branch.patch_embed.\2"),
    (r"(sm|lg)_image_embedder\.to_patch_embedding\.3\.(weight|bias)", r"\1_branch.embed_norm.\2"),
    (r"(sm|lg)_image_embedder\.pos_embedding", r"\1_branch.pos_embed"),
    (r"(sm|lg)_image_embedder\.cls_token", r"\1_branch.cls_token"),
    (r"multi_scale_encoder\.layers\.(\d+)\.([012])\.(.+)", _crossvit_key),
    (r"(sm|lg)_mlp_head\.0\.(weight|bias)", r"\1_head_norm.\2"),
    (r"(sm|lg)_mlp_head\.1\.(weight|bias)", r"\1_head.\2"),
]

ROW_HEADS = 8  # every attention of the authors' CrossViT and Twins-SVT rows (create_model.py)


def crossvit_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' CrossViT state dict -> ours (8 heads assumed: the weights do not say)."""
    family = "CrossViT"
    ours = _rename(sd, _CROSSVIT, family)
    pos = [_get(ours, f"{b}_branch.pos_embed", family) for b in ("sm", "lg")]
    patches = [_patch(_get(ours, f"{b}_branch.patch_norm.weight", family).shape[0], family)
               for b in ("sm", "lg")]
    inner = _get(ours, "blocks.0.sm_encoder.attns.0.q.weight", family).shape[0]
    cfg = CrossViTConfig(
        img_size=math.isqrt(pos[0].shape[1] - 1) * patches[0], patch_sizes=(patches[0], patches[1]),
        num_classes=_get(ours, "sm_head.weight", family).shape[0],
        dims=(pos[0].shape[-1], pos[1].shape[-1]),
        enc_depths=(_count(ours, r"blocks\.0\.sm_encoder\.attns\.(\d+)\..*"),
                    _count(ours, r"blocks\.0\.lg_encoder\.attns\.(\d+)\..*")),
        mlp_dims=(_get(ours, "blocks.0.sm_encoder.ffs.0.fc1.weight", family).shape[0],
                  _get(ours, "blocks.0.lg_encoder.ffs.0.fc1.weight", family).shape[0]),
        heads=ROW_HEADS, dim_head=inner // ROW_HEADS,
        cross_depth=_count(ours, r"blocks\.0\.sm_cross\.(\d+)\..*"),
        depth=_count(ours, r"blocks\.(\d+)\..*"))
    return _check_against(_built(CrossViT, cfg), ours, family)


# ---- RegionViT (models/regionvit.py) --------------------------------------------------------

_REGIONVIT: Rules = [
    (r"local_encoder\.(weight|bias)", r"local_embed.\1"),
    (r"region_encoder\.1\.(weight|bias)", r"region_embed.\1"),
    (r"layers\.([1-9]\d*)\.0\.conv\.(weight|bias)",
     lambda m: f"downsamples.{int(m.group(1)) - 1}.{m.group(2)}"),
    (r"layers\.(\d+)\.2\.local_rel_pos_bias\.weight", r"stages.\1.rel_pos_bias"),
    (r"layers\.(\d+)\.2\.layers\.(\d+)\.0\.(.+)",
     lambda m: f"stages.{m.group(1)}.attns.{m.group(2)}."
               + m.group(3).replace("to_qkv.", "qkv.").replace("to_out.0.", "proj.")),
    (r"layers\.(\d+)\.2\.layers\.(\d+)\.1\.([014])\.(weight|bias)",
     lambda m: f"stages.{m.group(1)}.ffs.{m.group(2)}."
               + {"0": "norm", "1": "fc1", "4": "fc2"}[m.group(3)] + f".{m.group(4)}"),
    (r"to_logits\.1\.(weight|bias)", r"norm.\1"),
    (r"to_logits\.2\.(weight|bias)", r"head.\1"),
]


def regionvit_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' RegionViT state dict (no PEG, one-conv local tokenizer) -> ours."""
    family = "RegionViT"
    ours = _rename(sd, _REGIONVIT, family)
    n = _count(ours, r"stages\.(\d+)\..*")
    table = _get(ours, "stages.0.rel_pos_bias", family)
    window = (math.isqrt(table.shape[0]) + 1) // 2
    heads = table.shape[1]
    region = _patch(_get(ours, "region_embed.weight", family).shape[1], family)
    dims = tuple(_get(ours, f"stages.{i}.attns.0.norm.weight", family).shape[0] for i in range(n))
    cfg = RegionViTConfig(
        img_size=8 * window, num_classes=_get(ours, "head.weight", family).shape[0], dims=dims,
        depths=tuple(_count(ours, rf"stages\.{i}\.attns\.(\d+)\..*") for i in range(n)),
        window_size=window, local_patch_size=region // window, heads=heads,
        dim_head=ours["stages.0.attns.0.qkv.weight"].shape[0] // 3 // heads,
        mlp_ratio=_get(ours, "stages.0.ffs.0.fc1.weight", family).shape[0] // dims[0])
    return _check_against(_built(RegionViT, cfg), ours, family)


# ---- Twins-SVT (models/twins_svt.py) --------------------------------------------------------

def _twins_branch(rest: str) -> str:
    """Keys under one residual branch (``fn.``) of a Twins block -> ours."""
    rest = rest.removeprefix("fn.")
    rest = re.sub(r"^norm\.g$", "norm.weight", rest)
    rest = re.sub(r"^norm\.b$", "norm.bias", rest)
    rest = rest.replace("net.0.g", "norm.weight").replace("net.0.b", "norm.bias")
    return _vit_pytorch_ff(_vit_pytorch_attn(rest))


_TWINS_BRANCH = ("local_attn", "local_ff", "global_attn", "global_ff")


def _twins_key(m: re.Match[str]) -> str | None:
    stage, part, rest = m.group(1), m.group(2), m.group(3)
    if part == "0":  # patch merging: proj.{0 LN, 1 conv, 2 LN}
        j = re.fullmatch(r"proj\.([012])\.(g|b|weight|bias)", rest)
        if j:
            name = ("norm_in", "proj", "norm_out")[int(j.group(1))]
            leaf = {"g": "weight", "b": "bias"}.get(j.group(2), j.group(2))
            return f"stages.{stage}.merge.{name}.{leaf}"
    elif part == "2":  # PEG: Residual(conv)
        j = re.fullmatch(r"proj\.fn\.(weight|bias)", rest)
        if j:
            return f"stages.{stage}.peg.{j.group(1)}"
    else:  # Transformer(depth=1) then Transformer(depth): layers.{j}.{0..3}.fn...
        j = re.fullmatch(r"layers\.(\d+)\.([0-3])\.(.+)", rest)
        if j:
            where = "first" if part == "1" else f"blocks.{j.group(1)}"
            if part == "1" and j.group(1) != "0":
                return None
            return (f"stages.{stage}.{where}.{_TWINS_BRANCH[int(j.group(2))]}."
                    f"{_twins_branch(j.group(3))}")
    return None


def twins_svt_from_authors(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The authors' TwinsSVT state dict -> ours (channel norms (1, C, 1, 1) -> (C,); 8 heads and
    local window 8 assumed: the weights do not say)."""
    family = "Twins-SVT"
    stage_keys = [int(m.group(1)) for k in sd if (m := re.fullmatch(r"layers\.(\d+)\..*", k))]
    head = max(stage_keys, default=0)  # the classifier: after 4 stages, pool and rearrange
    rules: Rules = [
        (rf"layers\.{head}\.(weight|bias)", r"head.\1"),
        (r"layers\.(\d+)\.([0-3])\.(.+)", _twins_key),
    ]
    ours = {}
    for key, value in _rename(sd, rules, family).items():
        if key.endswith(("norm.weight", "norm.bias", "norm_in.weight", "norm_in.bias",
                         "norm_out.weight", "norm_out.bias")):
            if value.dim() != 4 or value.shape[0] != 1 or value.shape[2:] != (1, 1):
                raise AuthorsLayoutError(f"Twins-SVT: the channel norm {key!r} has shape "
                                         f"{tuple(value.shape)}; the authors' is (1, C, 1, 1)")
            value = value.reshape(-1)
        ours[key] = value
    n = _count(ours, r"stages\.(\d+)\..*")
    dims = tuple(_get(ours, f"stages.{i}.merge.proj.weight", family).shape[0] for i in range(n))
    in_dim = _get(ours, "stages.0.merge.proj.weight", family).shape[1]
    patch = math.isqrt(in_dim // 3)
    q = _get(ours, "stages.0.first.global_attn.q.weight", family)
    cfg = TwinsConfig(
        num_classes=_get(ours, "head.weight", family).shape[0], dims=dims,
        depths=tuple(_count(ours, rf"stages\.{i}\.blocks\.(\d+)\..*") for i in range(n)),
        patch_size=patch, heads=ROW_HEADS, dim_head=q.shape[0] // ROW_HEADS,
        global_k=_get(ours, "stages.0.first.global_attn.kv.weight", family).shape[-1],
        mlp_ratio=_get(ours, "stages.0.first.global_ff.fc1.weight", family).shape[0] // dims[0],
        peg_kernel=_get(ours, "stages.0.peg.weight", family).shape[-1])
    return _check_against(_built(TwinsSVT, cfg), ours, family)


LAYOUTS_B: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {
    "rvt_": rvt_from_authors,
    "xcit_": xcit_from_authors,
    "crossvit_": crossvit_from_authors,
    "regionvit_": regionvit_from_authors,
    "twins_svt_": twins_svt_from_authors,
}
"""Our registered-name prefix -> the converter of the authors' state dict of that family."""

__all__ = ["LAYOUTS_B", "AuthorsLayoutError"]
