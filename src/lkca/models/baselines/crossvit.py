"""CrossViT, "Cross-Attention Multi-Scale Vision Transformer" (Chen, Fan, Panda 2021, arXiv
2103.14899), as the paper's authors build it.

The paper's CrossViT-T / CrossViT-S (Table 5) come from the authors' ``models/crossvit.py`` (the
vit-pytorch CrossViT) with the shapes of their ``models/create_model.py`` (``crossvit-t``,
``crossvit-s``). Two ViT branches (small and large), each embedding patches (LayerNorm of the
flattened patch, linear, LayerNorm; class token; learned position table); ``depth`` multi-scale
blocks, each running the small branch's encoder (``enc_depths[0]`` pre-LN blocks + LayerNorm), the
large branch's (``enc_depths[1]`` blocks + LayerNorm), then ``cross_depth`` cross-attention
rounds in which each branch's class token (projected to the other width when they differ)
attends to itself and the other branch's patch tokens. Logits: the sum of the two class tokens'
heads (LayerNorm + linear). Dropout 0.1 on the embeddings and inside the blocks, as create_model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lkca.layers import DropPath
from lkca.layers.input_checks import check_images
from lkca.models.baselines.common import eighth
from lkca.models.baselines.factory import build, paper_row
from lkca.models.baselines.softmax_attention import attend
from lkca.models.registry import register_model


@dataclass
class CrossViTConfig:
    """CrossViT hyper-parameters; pairs are (small branch, large branch)."""

    img_size: int = 64
    patch_sizes: tuple[int | None, int | None] = (None, None)  # None: img_size // 8 (create_model)
    in_chans: int = 3
    num_classes: int = 200
    dims: tuple[int, int] = (102, 102)
    enc_depths: tuple[int, int] = (1, 4)
    mlp_dims: tuple[int, int] = (102, 102)
    heads: int = 8  # every attention of both create_model rows: 8 heads of 16
    dim_head: int = 16
    cross_depth: int = 1
    depth: int = 2  # multi-scale blocks
    dropout: float = 0.1  # create_model: dropout = emb_dropout = 0.1
    drop_path_rate: float = 0.0  # create_model passes no stochastic depth to CrossViT


class Attention(nn.Module):
    """LayerNorm of x, then attention of x's tokens to ``context`` (default: x itself; with
    ``include_self``, x and context). (B, N, dim) -> (B, N, dim)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, heads * dim_head, bias=False)
        self.kv = nn.Linear(dim, 2 * heads * dim_head, bias=False)
        self.proj = nn.Linear(heads * dim_head, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        context = x if context is None else torch.cat([x, context], dim=1)
        B, N, _ = x.shape
        q = self.q(x).reshape(B, N, self.heads, -1).transpose(1, 2)
        k, v = (t.reshape(B, -1, self.heads, q.shape[-1]).transpose(1, 2)
                for t in self.kv(context).chunk(2, dim=-1))
        out = attend(q, k, v, q.shape[-1] ** -0.5, self.dropout, self.training)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, -1)))


class FeedForward(nn.Module):
    """LayerNorm, Linear, GELU, dropout, Linear, dropout: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # a module, as the authors' (ptflops counts it twice)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm(x))))))


class Encoder(nn.Module):
    """``depth`` blocks x + attn(x), x + ff(x), then LayerNorm. (B, N, dim) -> same."""

    def __init__(self, dim: int, depth: int, mlp_dim: int, cfg: CrossViTConfig) -> None:
        super().__init__()
        self.attns = nn.ModuleList(Attention(dim, cfg.heads, cfg.dim_head, cfg.dropout)
                                   for _ in range(depth))
        self.ffs = nn.ModuleList(FeedForward(dim, mlp_dim, cfg.dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.drop_path = DropPath(cfg.drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in zip(self.attns, self.ffs):
            x = x + self.drop_path(attn(x))
            x = x + self.drop_path(ff(x))
        return self.norm(x)


class CrossAttention(nn.Module):
    """A class token (B, 1, dim_in) attends, at the other branch's width ``dim``, to itself and
    the other branch's patch tokens; projected in and out when the widths differ."""

    def __init__(self, dim_in: int, dim: int, cfg: CrossViTConfig) -> None:
        super().__init__()
        self.proj_in: nn.Module = nn.Linear(dim_in, dim) if dim_in != dim else nn.Identity()
        self.attn = Attention(dim, cfg.heads, cfg.dim_head, cfg.dropout)
        self.proj_out: nn.Module = nn.Linear(dim, dim_in) if dim_in != dim else nn.Identity()

    def forward(self, cls: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        return self.proj_out(self.attn(self.proj_in(cls), patches))


class MultiScaleBlock(nn.Module):
    """Both encoders, then ``cross_depth`` rounds of class-token cross-attention."""

    def __init__(self, cfg: CrossViTConfig) -> None:
        super().__init__()
        (sm, lg), (d_sm, d_lg), (m_sm, m_lg) = cfg.dims, cfg.enc_depths, cfg.mlp_dims
        self.sm_encoder = Encoder(sm, d_sm, m_sm, cfg)
        self.lg_encoder = Encoder(lg, d_lg, m_lg, cfg)
        self.sm_cross = nn.ModuleList(CrossAttention(sm, lg, cfg) for _ in range(cfg.cross_depth))
        self.lg_cross = nn.ModuleList(CrossAttention(lg, sm, cfg) for _ in range(cfg.cross_depth))

    def forward(self, sm: torch.Tensor, lg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sm, lg = self.sm_encoder(sm), self.lg_encoder(lg)
        sm_cls, lg_cls = sm[:, :1], lg[:, :1]
        for sm_cross, lg_cross in zip(self.sm_cross, self.lg_cross):
            sm_cls = sm_cls + sm_cross(sm_cls, lg[:, 1:])
            lg_cls = lg_cls + lg_cross(lg_cls, sm[:, 1:])
        return torch.cat([sm_cls, sm[:, 1:]], dim=1), torch.cat([lg_cls, lg[:, 1:]], dim=1)


class Branch(nn.Module):
    """A branch's tokens: LayerNorm'd flattened patches -> linear -> LayerNorm, class token
    first, plus the position table, dropout. (B, C, H, W) -> (B, 1 + N, dim)."""

    def __init__(self, cfg: CrossViTConfig, patch: int, dim: int) -> None:
        super().__init__()
        self.patch = patch
        patch_dim = cfg.in_chans * patch**2
        self.patch_norm = nn.LayerNorm(patch_dim)
        self.patch_embed = nn.Linear(patch_dim, dim)
        self.embed_norm = nn.LayerNorm(dim)
        self.pos_embed = nn.Parameter(torch.randn(1, (cfg.img_size // patch) ** 2 + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        p = self.patch
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, p, C)
        x = self.embed_norm(self.patch_embed(self.patch_norm(x.reshape(B, -1, p * p * C))))
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        return self.drop(x + self.pos_embed[:, :x.shape[1]])


class CrossViT(nn.Module):
    """Images (B, in_chans, H, W) -> logits (B, num_classes): the sum of both branches' heads."""

    def __init__(self, cfg: CrossViTConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = cfg or CrossViTConfig(**kwargs)
        self.cfg = cfg
        patches = [eighth(cfg.img_size, p) for p in cfg.patch_sizes]
        (sm, lg) = cfg.dims
        self.sm_branch = Branch(cfg, patches[0], sm)
        self.lg_branch = Branch(cfg, patches[1], lg)
        self.blocks = nn.ModuleList(MultiScaleBlock(cfg) for _ in range(cfg.depth))
        self.sm_head_norm, self.sm_head = nn.LayerNorm(sm), nn.Linear(sm, cfg.num_classes)
        self.lg_head_norm, self.lg_head = nn.LayerNorm(lg), nn.Linear(lg, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "CrossViT")
        sm, lg = self.sm_branch(x), self.lg_branch(x)
        for block in self.blocks:
            sm, lg = block(sm, lg)
        return (self.sm_head(self.sm_head_norm(sm[:, 0]))
                + self.lg_head(self.lg_head_norm(lg[:, 0])))


# The shapes: the authors' models/create_model.py, rows 'crossvit-t' and 'crossvit-s' (both
# branches at patch img_size // 8 and one width; 8 heads of 16 everywhere; dropout 0.1).


@register_model("crossvit_t_tiny", aliases=("crossvit_t",),
                paper=paper_row("CrossViT-T", 1.04e6, 57.59e6, "Table 5", 64, 200))
def crossvit_t_tiny(**overrides: Any) -> CrossViT:
    """CrossViT-T (paper Table 5: 1.04M params, 57.59M MACs at 64x64, 200 classes).

    The authors' ``crossvit-t``: widths 102 / 102, encoders of 1 / 4 blocks (MLP 102), 1
    cross-attention round, 2 multi-scale blocks.
    """
    return build(CrossViT, CrossViTConfig(dims=(102, 102), mlp_dims=(102, 102), cross_depth=1,
                                          depth=2), overrides)


@register_model("crossvit_s_tiny", aliases=("crossvit_s",),
                paper=paper_row("CrossViT-S", 2.40e6, 126.11e6, "Table 5", 64, 200))
def crossvit_s_tiny(**overrides: Any) -> CrossViT:
    """CrossViT-S (paper Table 5: 2.40M params, 126.11M MACs at 64x64, 200 classes).

    The authors' ``crossvit-s``: widths 128 / 128, encoders of 1 / 4 blocks (MLP 128), 2
    cross-attention rounds, 3 multi-scale blocks.
    """
    return build(CrossViT, CrossViTConfig(dims=(128, 128), mlp_dims=(128, 128), cross_depth=2,
                                          depth=3), overrides)
