"""ViT and ViT-LKCA (paper section 3.2.3): one model class, every size a factory.

A block is a sequence of pre-LN residual sub-layers (:class:`lkca.layers.PreNormBlock`): its token
mixer(s), then the MLP, each ``x = x + DropPath(f(LN(x)))``. The layout string gives each block's
mixers, one letter per block: ``A`` self-attention, ``L`` LKCA, ``K`` VAN's LKA, and ``H``
self-attention then LKCA (the paper's text read literally, "retaining the self-attention
modules"; the authors' code does not do this). ViT-LKCA as the authors' code builds it
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet, ``models/largevit_cnn.py``) is
layout ``L`` with one kernel per block and the value / output projections; every reading and its
source: docs/block-readings.md.

ViT-LKCA has no class token and classifies the mean of the last tokens, then LayerNorm, then
Linear (``head_norm="pooled"``, the authors' ``mlp_head(x.mean(dim=1))``); the ViT baseline keeps
the class token of SPT's ViT, whose position table covers the class token too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lkca.errors import ConfigError
from lkca.layers import LKA, LKCA, Attention, Mlp, PatchEmbed, PosEmbed, PreNormBlock
from lkca.layers.drop_path import DROP_PATH_SCHEDULES, drop_path_rates
from lkca.layers.input_checks import check_images
from lkca.layers.patch_embed import check_divisible
from lkca.layers.weight_init import check_init, check_kernel_init, init_spt, init_weights

# One letter per block: the token mixers of that block, in order.
MIXER_CODES = {"A": ("attn",), "L": ("lkca",), "K": ("lka",), "H": ("attn", "lkca")}
# Named layouts: the pattern repeated over the depth.
NAMED_LAYOUTS = {"attn": "A", "lkca": "L", "lka": "K", "attn_lkca": "H", "alternate": "LA"}


def mixer_layout(mixers: str, depth: int) -> str:
    """Expand a layout name to one letter per block.

    ``"attn"`` -> ``"AAA..."``, ``"lkca"`` -> ``"LLL..."``, ``"lka"`` -> ``"KKK..."``,
    ``"attn_lkca"`` -> ``"HHH..."`` (self-attention + LKCA + MLP in every block),
    ``"alternate"`` -> ``"LALA..."``; an explicit string such as ``"LLAA"`` must have ``depth``
    letters from A, L, K, H.
    """
    if mixers in NAMED_LAYOUTS:
        return (NAMED_LAYOUTS[mixers] * depth)[:depth]
    layout = mixers.upper()
    if len(layout) != depth or set(layout) - set(MIXER_CODES):
        raise ConfigError(
            f"mixers={mixers!r}: give one of {', '.join(NAMED_LAYOUTS)} or {depth} letters from "
            "A (attention), L (LKCA), K (LKA), H (attention then LKCA), e.g. "
            + repr(("LA" * depth)[:depth])
        )
    return layout


@dataclass
class ViTConfig:
    """Hyper-parameters of :class:`VisionTransformer` (every registered size sets these).

    The defaults are SPT's ViT (the recipe the paper follows): dim 192, depth 9, 12 heads, MLP
    ratio 2, constant stochastic depth, SPT's initialisation (docs/models.md lists every field).
    """

    img_size: int | tuple[int, int] = 32
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 10  # 0: no classifier (forward returns the pooled features)
    dim: int = 192
    depth: int = 9
    num_heads: int = 12
    head_dim: int | None = None  # attention only; default dim // num_heads
    mlp_ratio: float = 2.0
    mixers: str = "attn"
    pool: str = "mean"  # "mean" or "cls"
    head_norm: str = "pooled"  # "pooled": pool, LN, Linear (the authors'); "tokens": LN every token
    cls_pos_embed: bool = True  # pool="cls": the position table has a row for the class token
    kernel_size: int | None = None  # LKCA kernel; None = global kernel of the grid
    kernel_heads: int | None = None  # LKCA kernels per block; None = num_heads, 1 = one per block
    lkca_impl: str = "auto"
    lkca_projections: bool = False  # the authors' value (no bias) and output projections
    lkca_value_bias: bool = False  # a bias on the value projection (lkca 0.1.0's projections)
    qkv_bias: bool = False
    drop_rate: float = 0.0  # dropout after the embedding and on every sub-layer's output
    drop_path_rate: float = 0.0
    drop_path_schedule: str = "constant"  # "constant" (SPT) or "linear" (timm, MMSegmentation)
    init: str = "spt"  # "spt" (SPT's models/vit.py) or "trunc_normal" (timm; lkca 0.1.0)
    kernel_init: str = "zeros"  # init="spt": LKCA kernels "zeros" (the authors') or "conv"

    def __post_init__(self) -> None:
        if self.pool not in ("mean", "cls"):
            raise ConfigError(f"pool must be 'mean' or 'cls', got {self.pool!r}")
        if self.drop_path_schedule not in DROP_PATH_SCHEDULES:
            raise ConfigError(f"drop_path_schedule {self.drop_path_schedule!r} is not one of "
                              f"{', '.join(DROP_PATH_SCHEDULES)}; use 'constant' (SPT) or 'linear'")
        check_init(self.init)
        check_kernel_init(self.kernel_init)
        if self.head_norm not in ("pooled", "tokens"):
            raise ConfigError(f"head_norm must be 'pooled' (pool, LayerNorm, Linear: the authors') "
                              f"or 'tokens' (LayerNorm on every token, then pool), got "
                              f"{self.head_norm!r}")
        if not 0.0 <= self.drop_path_rate < 1.0 or not 0.0 <= self.drop_rate < 1.0:
            raise ConfigError(f"drop_rate ({self.drop_rate}) and drop_path_rate "
                              f"({self.drop_path_rate}) must lie in [0, 1)")
        if self.num_classes < 0 or self.depth < 1 or self.dim < 1:
            raise ConfigError(f"need num_classes >= 0, depth >= 1 and dim >= 1 (got "
                              f"{self.num_classes}, {self.depth}, {self.dim})")
        for name in ("patch_size", "in_chans", "num_heads", "head_dim", "kernel_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if not self.mlp_ratio > 0:
            raise ConfigError(f"mlp_ratio must be > 0 (2 in SPT's ViT), got {self.mlp_ratio}")
        if self.kernel_heads is not None and (self.kernel_heads < 1 or self.dim % self.kernel_heads):
            raise ConfigError(f"kernel_heads ({self.kernel_heads}) must divide dim ({self.dim}): "
                              "each LKCA kernel is shared by dim / kernel_heads channels; use 1 "
                              "(one kernel per block) or a divisor of dim")

    @property
    def lkca_kernel_heads(self) -> int:
        """The number of LKCA kernels per block (``kernel_heads``, else one per head)."""
        return self.num_heads if self.kernel_heads is None else self.kernel_heads


class Block(PreNormBlock):
    """A ViT block of layout letter ``code``: its token mixer(s), then the MLP, each pre-LN with
    stochastic depth ``drop_path``.

    A one-mixer block (A, L, K) keeps its mixer as ``mixer`` (state-dict keys ``norm1, mixer,
    norm2, mlp``); the three-sub-layer block H has ``norm1, attn, norm2, lkca, norm3, mlp``.
    ``forward(x, grid)``: x (B, N, dim) -> (B, N, dim), ``grid`` the (H, W) patch grid of the
    tokens (LKCA / LKA run on it; attention ignores it).
    """

    def __init__(self, cfg: ViTConfig, code: str, grid: tuple[int, int], drop_path: float) -> None:
        kinds = MIXER_CODES[code]
        modules = [_mixer(kind, cfg, grid) for kind in kinds]
        names = ["mixer"] if len(kinds) == 1 else list(kinds)
        mlp = Mlp(cfg.dim, int(cfg.dim * cfg.mlp_ratio), cfg.drop_rate)
        super().__init__(cfg.dim, list(zip(names, modules)), mlp, drop_path)


def _mixer(kind: str, cfg: ViTConfig, grid: tuple[int, int]) -> nn.Module:
    if kind == "attn":
        return Attention(cfg.dim, cfg.num_heads, cfg.head_dim, cfg.qkv_bias,
                         proj_drop=cfg.drop_rate)
    if kind == "lkca":
        return LKCA(cfg.dim, cfg.lkca_kernel_heads, grid, cfg.kernel_size, cfg.lkca_impl,
                    cfg.lkca_projections, proj_drop=cfg.drop_rate,
                    value_bias=cfg.lkca_value_bias)
    return LKA(cfg.dim, grid, proj_drop=cfg.drop_rate)


class VisionTransformer(nn.Module):
    """ViT / ViT-LKCA classifier: (B, in_chans, H, W) images -> (B, num_classes) logits.

    ``forward_features`` returns the final tokens (B, [1 +] N, dim) and their grid (normalised
    with ``head_norm="tokens"``; with ``"pooled"`` the LayerNorm follows the pooling);
    ``forward_intermediates`` the patch-token maps after chosen blocks (backbones, analysis);
    ``forward_head`` pools and classifies. Images of any size divisible by the patch run
    (position embeddings are interpolated, LKCA runs on the new grid).
    """

    def __init__(self, cfg: ViTConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = ViTConfig(**overrides) if cfg is None else cfg
        img = (cfg.img_size, cfg.img_size) if isinstance(cfg.img_size, int) else cfg.img_size
        check_divisible((img[0], img[1]), cfg.patch_size)
        self.cfg = cfg
        self.layout = mixer_layout(cfg.mixers, cfg.depth)
        if cfg.pool == "cls" and set(self.layout) != {"A"}:
            raise ConfigError(
                "pool='cls' needs attention alone in every block (LKCA/LKA mix tokens on the "
                "patch grid only); use pool='mean'"
            )
        _check_heads(cfg, self.layout)
        self.patch_embed = PatchEmbed(img, cfg.patch_size, cfg.in_chans, cfg.dim)
        grid = self.patch_embed.grid_size
        has_cls = cfg.pool == "cls"
        # SPT adds its position table after prepending the class token (models/vit.py line 167).
        self.pos_embed = PosEmbed(grid, cfg.dim, prefix_tokens=int(has_cls and cfg.cls_pos_embed))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if has_cls else None
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        (rates,) = drop_path_rates(cfg.drop_path_rate, [cfg.depth], cfg.drop_path_schedule)
        self.blocks = nn.ModuleList(
            Block(cfg, code, grid, rate) for code, rate in zip(self.layout, rates)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head: nn.Module = (nn.Linear(cfg.dim, cfg.num_classes) if cfg.num_classes > 0
                                else nn.Identity())
        if cfg.init == "spt":
            init_spt(self, cfg.kernel_init)
            if self.cls_token is not None:
                nn.init.normal_(self.cls_token, std=1.0)  # SPT: torch.randn (line 145)
        else:
            self.apply(init_weights)

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.patch_embed.grid_size

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Images -> tokens (B, [1 +] N, dim) with position (and class token), and the grid."""
        check_images(x, "VisionTransformer")
        x, grid = self.patch_embed(x)  # (B, N, dim)
        cls = None if self.cls_token is None else self.cls_token.expand(x.shape[0], -1, -1)
        if cls is not None and self.pos_embed.prefix_tokens:
            x = self.pos_embed(torch.cat([cls, x], dim=1), grid)  # SPT: 1 + N rows
        else:
            x = self.pos_embed(x, grid)
            if cls is not None:  # lkca 0.1.0's ViT: position on the patches only
                x = torch.cat([cls, x], dim=1)
        return self.pos_drop(x), grid

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Images (B, in_chans, H, W) -> the last block's tokens (B, [1 +] N, dim) and the grid,
        after the final LayerNorm when ``head_norm="tokens"``."""
        x, grid = self._embed(x)
        for block in self.blocks:
            x = block(x, grid)
        return (self.norm(x) if self.cfg.head_norm == "tokens" else x), grid

    def forward_intermediates(
        self, x: torch.Tensor, indices: int | Sequence[int] | None = None, *,
        norm: bool = False, final_norm: bool = False,
    ) -> list[torch.Tensor]:
        """Patch-token maps (B, dim, H / p, W / p) after the chosen blocks (as timm's).

        ``indices``: None = every block; an int n = the last n blocks; a sequence = those block
        indices (negative ones count from the end), returned in increasing order. Only the blocks
        up to the last one asked for run. The class token, if any, is dropped. ``norm`` applies
        the final LayerNorm to every map (timm); ``final_norm`` applies it to the last block's
        map only, where the model itself applies it (MMSegmentation's ``final_norm=True``).
        Without either the maps are the raw block outputs (the effective receptive field is
        read there).
        """
        take = _block_indices(indices, len(self.blocks))
        x, (h, w) = self._embed(x)
        prefix = 0 if self.cls_token is None else 1
        maps = []
        for i, block in enumerate(self.blocks[: take[-1] + 1]):
            x = block(x, (h, w))
            if i in take:
                y = self.norm(x) if norm or (final_norm and i == len(self.blocks) - 1) else x
                y = y[:, prefix:]  # (B, N, dim)
                maps.append(y.transpose(1, 2).reshape(y.shape[0], -1, h, w))
        return maps

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        """:meth:`forward_features`' tokens (B, [1 +] N, dim) -> logits (B, num_classes): the
        class token or the mean of the tokens, LayerNorm when ``head_norm="pooled"`` (the authors'
        ``mlp_head``: ``models/largevit_cnn.py`` lines 141-144 and 166), then the classifier (the
        pooled features when num_classes is 0). For the class token both orders are the same map
        (LayerNorm acts on each token alone)."""
        pooled = tokens[:, 0] if self.cls_token is not None else tokens.mean(dim=1)
        if self.cfg.head_norm == "pooled":
            pooled = self.norm(pooled)
        return self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.forward_features(x)
        return self.forward_head(tokens)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``directory`` for
        :func:`lkca.from_pretrained` (see :mod:`lkca.pretrained`)."""
        from lkca.checkpoint.pretrained_dir import save_pretrained

        return save_pretrained(self, directory)


def _check_heads(cfg: ViTConfig, layout: str) -> None:
    """ConfigError unless ``dim`` splits into ``num_heads`` heads where a mixer splits it so:
    attention without ``head_dim``, LKCA without ``kernel_heads``. The fix names the config key
    too (``model_args.num_heads``), as a training config sets it."""
    attention = cfg.head_dim is None and bool(set(layout) & {"A", "H"})
    lkca = cfg.kernel_heads is None and bool(set(layout) & {"L", "H"})
    if (attention or lkca) and cfg.dim % cfg.num_heads:
        divisor = max(h for h in range(1, cfg.num_heads + 1) if cfg.dim % h == 0)
        raise ConfigError(
            f"dim ({cfg.dim}) must be a multiple of num_heads ({cfg.num_heads}), the heads of "
            f"{'attention' if attention else 'LKCA'}; set num_heads to a divisor of dim (in a "
            f"training config model_args.num_heads, e.g. --set model_args.num_heads={divisor}) "
            "or dim to a multiple of num_heads")


def _block_indices(indices: int | Sequence[int] | None, depth: int) -> list[int]:
    if indices is None:
        return list(range(depth))
    if isinstance(indices, int):
        if not 1 <= indices <= depth:
            raise ValueError(f"forward_intermediates: indices={indices} asks for the last "
                             f"{indices} blocks of {depth}; give 1..{depth}")
        return list(range(depth - indices, depth))
    take = sorted({i % depth if -depth <= i < depth else -1 for i in indices})
    if not take or take[0] < 0:
        raise ValueError(f"forward_intermediates: block indices {list(indices)} must lie in "
                         f"[-{depth}, {depth}) and not be empty")
    return take


__all__ = ["Block", "MIXER_CODES", "NAMED_LAYOUTS", "ViTConfig", "VisionTransformer",
           "init_weights", "mixer_layout"]
