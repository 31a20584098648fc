"""Checkpoints of the paper's authors' comparison models, converted to ours.

The authors' training code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet,
``models/<family>.py``) saves ``model.state_dict()`` of its own classes. For Swin, CaiT, T2T,
MobileViT ("mbv2"), CvT and DeepViT, :data:`LAYOUTS_A` maps our registered-name prefix to a
function that takes such a state dict and returns the state dict of our model of the same
shape: every key renamed, LayerScale and channel-LayerNorm tensors reshaped, the buffers our
models rebuild (Swin's relative-position index and shift masks) dropped, and every key and
shape checked against our model built from the shape the checkpoint implies. Anything else
raises :class:`AuthorsLayoutError` naming the first difference.

What a checkpoint cannot tell (no tensor depends on it) is taken from the authors' rows
(``models/create_model.py``): T2T's soft-split strides (kernel 11 -> stride 8, 7 -> 4, 3 -> 2,
2 -> 1), CvT's embedding strides (4, 2, 2), key/value stride 2 and heads of 64 channels; the
image size of MobileViT and CvT (they have no position table) stays our default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lkca.errors import AuthorsLayoutError
from lkca.models.baselines.cait import CaiT, CaiTConfig
from lkca.models.baselines.cvt import CvT, CvTConfig
from lkca.models.baselines.deepvit import DeepViT, DeepViTConfig
from lkca.models.baselines.mobilevitv2 import MobileViT, MobileViTConfig
from lkca.models.baselines.swin import SwinConfig, SwinTransformer
from lkca.models.baselines.t2t import T2TConfig, T2TViT, soft_split_side

StateDict = dict[str, Tensor]
Rules = Sequence[tuple[str, str | Callable[[re.Match[str]], str]]]


# vit-pytorch's transformer layers: [attention, feed-forward] pairs, Sequential indices inside
VIT_PYTORCH_RULES: Rules = [
    (r"(^|\.)layers\.(\d+)\.0\.", r"\1blocks.\2.attn."),
    (r"(^|\.)layers\.(\d+)\.1\.", r"\1blocks.\2.ff."),
    (r"attn\.to_qkv\.", "attn.qkv."), (r"attn\.to_out\.0\.", "attn.proj."),
    (r"ff\.net\.0\.", "ff.norm."), (r"ff\.net\.1\.", "ff.fc1."), (r"ff\.net\.4\.", "ff.fc2."),
]
PATCH_EMBED_RULES: Rules = [
    (r"^to_patch_embedding\.1\.", "patch_embed.norm_in."),
    (r"^to_patch_embedding\.2\.", "patch_embed.proj."),
    (r"^to_patch_embedding\.3\.", "patch_embed.norm_out."),
    (r"^pos_embedding$", "pos_embed"),
    (r"^mlp_head\.0\.", "head_norm."), (r"^mlp_head\.1\.", "head."),
]


def _fail(family: str, what: str) -> AuthorsLayoutError:
    return AuthorsLayoutError(f"not the authors' {family} layout: {what}")


def _get(sd: StateDict, key: str, family: str) -> Tensor:
    if key not in sd:
        raise _fail(family, f"no '{key}'")
    return sd[key]


def _count(sd: StateDict, pattern: str) -> int:
    """How many distinct indices ``(\\d+)`` in ``pattern`` the keys of ``sd`` hold."""
    found = {m.group(1) for k in sd if (m := re.match(pattern, k))}
    return len(found)


def convert(sd: StateDict, family: str, model: nn.Module, rules: Rules,
            drop: str | None = None, reshape: str | None = None) -> StateDict:
    """Rename every key of ``sd`` by ``rules`` (regex substitutions in order), drop the keys
    matching ``drop``, reshape those matching ``reshape`` (LayerScale, channel LayerNorm) to our
    shape, and check that the result has exactly ``model``'s keys and shapes."""
    expected = model.state_dict()
    out: StateDict = {}
    for key, value in sd.items():
        if drop and re.search(drop, key):
            continue
        ours = key
        for pattern, repl in rules:
            ours = re.sub(pattern, repl, ours)
        if ours not in expected:
            raise _fail(family, f"unexpected key '{key}'")
        want = expected[ours].shape
        if reshape and re.search(reshape, key) and value.numel() == want.numel():
            value = value.reshape(want)
        if value.shape != want:
            raise _fail(family, f"'{key}' has shape {tuple(value.shape)}, the shape it implies "
                                f"needs {tuple(want)}")
        out[ours] = value
    missing = sorted(set(expected) - set(out))
    if missing:
        raise _fail(family, f"missing '{missing[0]}' (ours) and {len(missing) - 1} more")
    return out


def _build(cls: Callable[..., nn.Module], cfg: Any, family: str) -> nn.Module:
    try:
        with torch.device("meta"):  # shapes only
            return cls(cfg)
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        raise _fail(family, f"its tensors imply no buildable model ({err})") from None


def swin_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``SwinTransformer`` (models/swin.py) -> our :class:`SwinTransformer`."""
    f = "Swin"
    proj = _get(sd, "patch_embed.proj.weight", f)  # (C, in_chans, p, p)
    depths = tuple(_count(sd, rf"layers\.{i}\.blocks\.(\d+)\.")
                   for i in range(_count(sd, r"layers\.(\d+)\.")))
    heads = tuple(_get(sd, f"layers.{i}.blocks.0.attn.relative_position_bias_table", f).shape[1]
                  for i in range(len(depths)))
    table = _get(sd, "layers.0.blocks.0.attn.relative_position_bias_table", f).shape[0]  # (2w-1)^2
    fc1 = _get(sd, "layers.0.blocks.0.mlp.fc1.weight", f)
    side = math.isqrt(_get(sd, "absolute_pos_embed", f).shape[1])
    cfg = SwinConfig(img_size=side * proj.shape[2], patch_size=proj.shape[2],
                     in_chans=proj.shape[1], num_classes=_get(sd, "head.weight", f).shape[0],
                     embed_dim=proj.shape[0], depths=depths, num_heads=heads,
                     window_size=(math.isqrt(table) + 1) // 2,
                     mlp_ratio=fc1.shape[0] / fc1.shape[1],
                     qkv_bias="layers.0.blocks.0.attn.qkv.bias" in sd)
    return convert(sd, f, _build(SwinTransformer, cfg, f), [(r"^patch_embed\.norm\.", "embed_norm.")],
                   drop=r"(relative_position_index|attn_mask)$")


def _vit_pytorch_shape(sd: StateDict, family: str, blocks: str) -> dict[str, Any]:
    """dim, patch, image size, classes, depth and MLP width of a vit-pytorch ViT-like model."""
    proj = _get(sd, "to_patch_embedding.2.weight", family)  # (dim, 3 * p * p)
    patch = math.isqrt(proj.shape[1] // 3)
    tokens = _get(sd, "pos_embedding", family).shape[1]
    return dict(dim=proj.shape[0], patch_size=patch, tokens=tokens,
                num_classes=_get(sd, "mlp_head.1.weight", family).shape[0],
                depth=_count(sd, rf"{blocks}\.layers\.(\d+)\."),
                mlp_dim=_get(sd, f"{blocks}.layers.0.1.{'fn.' if family == 'CaiT' else ''}"
                                 "net.1.weight", family).shape[0])


def cait_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``CaiT`` (models/cait.py, vit-pytorch) -> our :class:`CaiT`."""
    f = "CaiT"
    s = _vit_pytorch_shape(sd, f, "patch_transformer")
    heads = _get(sd, "patch_transformer.layers.0.0.fn.mix_heads_pre_attn", f).shape[0]
    inner = _get(sd, "patch_transformer.layers.0.0.fn.to_q.weight", f).shape[0]
    cfg = CaiTConfig(img_size=math.isqrt(s["tokens"]) * s["patch_size"],
                     patch_size=s["patch_size"], num_classes=s["num_classes"], dim=s["dim"],
                     depth=s["depth"], cls_depth=_count(sd, r"cls_transformer\.layers\.(\d+)\."),
                     num_heads=heads, dim_head=inner // heads, mlp_dim=s["mlp_dim"])
    rules: Rules = [(r"^patch_transformer\.", "blocks."), (r"^cls_transformer\.", "cls_blocks."),
             (r"\.layers\.(\d+)\.0\.scale$", r".\1.gamma1"),
             (r"\.layers\.(\d+)\.1\.scale$", r".\1.gamma2"),
             (r"\.layers\.(\d+)\.0\.fn\.", r".\1.attn."), (r"\.layers\.(\d+)\.1\.fn\.", r".\1.ff."),
             (r"attn\.to_q\.", "attn.q."), (r"attn\.to_kv\.", "attn.kv."),
             (r"attn\.mix_heads_pre_attn$", "attn.mix_pre"),
             (r"attn\.mix_heads_post_attn$", "attn.mix_post"), *VIT_PYTORCH_RULES,
             *PATCH_EMBED_RULES]
    return convert(sd, f, _build(CaiT, cfg, f), rules, reshape=r"\.scale$")


def deepvit_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``DeepViT`` (models/deepvit.py, vit-pytorch) -> our :class:`DeepViT`."""
    f = "DeepViT"
    s = _vit_pytorch_shape(sd, f, "transformer")
    heads = _get(sd, "transformer.layers.0.0.reattn_weights", f).shape[0]
    inner = _get(sd, "transformer.layers.0.0.to_qkv.weight", f).shape[0] // 3
    cfg = DeepViTConfig(img_size=math.isqrt(s["tokens"] - 1) * s["patch_size"],
                        patch_size=s["patch_size"], num_classes=s["num_classes"], dim=s["dim"],
                        depth=s["depth"], num_heads=heads, dim_head=inner // heads,
                        mlp_dim=s["mlp_dim"])
    rules: Rules = [(r"^transformer\.", ""), *VIT_PYTORCH_RULES,
             (r"attn\.reattn_weights$", "attn.theta"), (r"attn\.reattn_norm\.1\.", "attn.map_norm."),
             *PATCH_EMBED_RULES]
    return convert(sd, f, _build(DeepViT, cfg, f), rules)


SOFT_SPLIT_STRIDES = {11: 8, 7: 4, 3: 2, 2: 1}  # the authors' rows' (kernel, stride) pairs


def t2t_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``T2TViT`` (models/t2t.py, vit-pytorch) -> our :class:`T2TViT`."""
    f = "T2T"
    n_splits = len([k for k in sd if re.fullmatch(r"to_patch_embedding\.\d+\.weight", k)
                    and sd[k].dim() == 2])
    if n_splits != 1:
        raise _fail(f, "expected one linear projection 'to_patch_embedding.<4n>.weight'")
    project = next(k for k in sd if re.fullmatch(r"to_patch_embedding\.\d+\.weight", k))
    n = int(project.split(".")[1]) // 4  # soft splits; transformers at 3, 7, ...
    widths = [_get(sd, f"to_patch_embedding.{4 * i + 3}.norm.weight", f).shape[0]
              for i in range(n - 1)] + [sd[project].shape[1]]
    kernels, prev = [], 3
    for w in widths:
        k = math.isqrt(w // prev)
        if k * k * prev != w or k not in SOFT_SPLIT_STRIDES:
            raise _fail(f, f"token width {w} is no soft split of the authors' rows")
        kernels.append(k)
        prev = w
    # (dim, heads * dim_head); the head count is in no tensor's shape: the authors' rows use 4
    inner = _get(sd, "transformer.layers.0.0.to_out.0.weight", f).shape[1]
    splits = tuple((k, SOFT_SPLIT_STRIDES[k]) for k in kernels)
    tokens = _get(sd, "pos_embedding", f).shape[1] - 1
    cfg = T2TConfig(img_size=_t2t_image_size(splits, tokens, f),
                    num_classes=_get(sd, "mlp_head.1.weight", f).shape[0], soft_splits=splits,
                    dim=sd[project].shape[0], depth=_count(sd, r"transformer\.layers\.(\d+)\."),
                    mlp_dim=_get(sd, "transformer.layers.0.1.net.1.weight", f).shape[0],
                    num_heads=4, dim_head=inner // 4)
    rules: Rules = [(rf"^to_patch_embedding\.{4 * n}\.", "project."),
             (r"^to_patch_embedding\.(\d+)\.",
              lambda m: f"restructure.{(int(m.group(1)) - 3) // 4}."),
             *VIT_PYTORCH_RULES, *PATCH_EMBED_RULES]
    return convert(sd, f, _build(T2TViT, cfg, f), rules)


def _t2t_image_size(splits: tuple[tuple[int, int], ...], tokens: int, family: str) -> int:
    """The smallest image size (32 and 64 first) whose soft splits leave ``tokens`` tokens."""
    for size in (32, 64, *range(8, 513, 8)):  # the data sets' sizes first
        side = size
        for k, s in splits:
            side = soft_split_side(side, k, s)
        if side * side == tokens:
            return size
    raise _fail(family, f"no image size gives {tokens} tokens")


def mobilevit_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``MobileViT`` (models/mbvit.py, the "mbv2" rows) -> our :class:`MobileViT`."""
    f = "MobileViT"
    out = [_get(sd, f"mv2.{i}.conv.6.weight", f).shape[0] for i in range(7)]  # c1..c4, c6, c8
    c0 = _get(sd, "conv1.0.weight", f).shape[0]
    channels = (c0, out[0], out[1], out[2], out[4], out[4], out[5], out[5], out[6], out[6],
                _get(sd, "conv2.0.weight", f).shape[0])
    dims = tuple(_get(sd, f"mvit.{i}.conv2.0.weight", f).shape[0] for i in range(3))
    depths = tuple(_count(sd, rf"mvit\.{i}\.transformer\.layers\.(\d+)\.") for i in range(3))
    ratios = tuple(_get(sd, f"mvit.{i}.transformer.layers.0.1.fn.net.0.weight", f).shape[0] // d
                   for i, d in enumerate(dims))
    cfg = MobileViTConfig(num_classes=_get(sd, "fc.weight", f).shape[0], dims=dims,
                          channels=channels, depths=depths, mlp_ratios=ratios,
                          expansion=_get(sd, "mv2.0.conv.0.weight", f).shape[0] // c0)
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
    return convert(sd, f, _build(MobileViT, cfg, f), rules)


def cvt_from_authors(sd: StateDict) -> StateDict:
    """The authors' ``CvT`` (models/cvt.py, vit-pytorch) -> our :class:`CvT`."""
    f = "CvT"
    n = _count(sd, r"layers\.(\d+)\.0\.weight")
    if n != 3:
        raise _fail(f, f"{n} stages; the authors' CvT has 3")
    embeds = [_get(sd, f"layers.{i}.0.weight", f) for i in range(n)]  # (dim, c_in, k, k)
    inner = [_get(sd, f"layers.{i}.2.layers.0.0.to_q.net.2.weight", f).shape[0] for i in range(n)]
    dim_head = CvTConfig.dim_head
    cfg = CvTConfig(in_chans=embeds[0].shape[1], num_classes=_get(sd, "to_logits.2.weight", f).shape[0],
                    dims=tuple(e.shape[0] for e in embeds),
                    embed_kernels=tuple(e.shape[2] for e in embeds),
                    num_heads=tuple(i // dim_head for i in inner),
                    depths=tuple(_count(sd, rf"layers\.{i}\.2\.layers\.(\d+)\.") for i in range(n)),
                    mlp_ratio=_get(sd, "layers.0.2.layers.0.1.net.1.weight", f).shape[0]
                    // embeds[0].shape[0],
                    proj_kernel=_get(sd, "layers.0.2.layers.0.0.to_q.net.0.weight", f).shape[-1])
    rules: Rules = [(r"^layers\.(\d+)\.0\.", r"stages.\1.embed."),
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
    return convert(sd, f, _build(CvT, cfg, f), rules, reshape=r"\.(g|b)$")


LAYOUTS_A: dict[str, Callable[[StateDict], StateDict]] = {
    "swin_": swin_from_authors,
    "cait_": cait_from_authors,
    "t2t_": t2t_from_authors,
    "mobilevitv2_": mobilevit_from_authors,
    "cvt_": cvt_from_authors,
    "deepvit_": deepvit_from_authors,
}

__all__ = ["LAYOUTS_A", "AuthorsLayoutError"]
