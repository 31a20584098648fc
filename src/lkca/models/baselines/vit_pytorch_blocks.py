"""The vit-pytorch (lucidrains) pieces the paper's comparison models are built from.

The paper's authors build CaiT, T2T-ViT, DeepViT, CvT and MobileViT from vit-pytorch's files
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet ``models/cait.py``, ``t2t.py``,
``deepvit.py``, ``cvt.py``, ``mbvit.py``). Those files share a few choices that differ from the
families' own papers and from timm: the LayerNorm sits *inside* each residual branch, attention
has no q/k/v bias and ``heads * dim_head`` inner channels (not ``dim``), patches are flattened
pixel-major ``(p1, p2, c)`` and embedded by LayerNorm, Linear, LayerNorm. Written here once.
"""

from __future__ import annotations

import torch
from torch import nn

from lkca.layers import DropPath


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v over the last two axes: q (..., n, d), k, v (..., m, d) -> (..., n, d).

    Written with matmuls (not ``scaled_dot_product_attention``) so that ptflops, which the
    authors' ``count.py`` uses, counts the same operations in our models as in theirs.
    """
    return torch.matmul((torch.matmul(q, k.transpose(-1, -2)) * scale).softmax(-1), v)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, heads * d) -> (B, heads, N, d)."""
    B, N, C = x.shape
    return x.reshape(B, N, heads, C // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    B, H, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, H * d)


class FeedForward(nn.Module):
    """LayerNorm (optional), Linear dim -> hidden, activation, Linear hidden -> dim.

    (..., dim) -> (..., dim). ``norm=False`` where the caller normalises (MobileViT's PreNorm).
    """

    def __init__(self, dim: int, hidden_dim: int, act: type[nn.Module] = nn.GELU,
                 norm: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class MultiHeadAttention(nn.Module):
    """LayerNorm (optional), q/k/v without bias to ``heads * dim_head`` channels, attention,
    output Linear back to ``dim``. (B, N, dim) -> (B, N, dim).

    As vit-pytorch, a single head as wide as ``dim`` has no output projection (T2T's token
    transformers).
    """

    def __init__(self, dim: int, heads: int, dim_head: int, norm: bool = True) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim) if (heads, dim_head) != (1, dim) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(self.norm(x)).chunk(3, dim=-1))
        return self.proj(merge_heads(attend(q, k, v, self.scale)))  # (B, N, dim)


class TransformerBlock(nn.Module):
    """x + attn(x), then + feed_forward(x), each branch under stochastic depth.

    (B, N, dim) -> (B, N, dim); the branches carry their own LayerNorm (vit-pytorch).
    """

    def __init__(self, attn: nn.Module, ff: nn.Module, drop_path: float) -> None:
        super().__init__()
        self.attn, self.ff = attn, ff
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x))
        return x + self.drop_path(self.ff(x))


class PixelPatchEmbed(nn.Module):
    """vit-pytorch's patch embedding: each p x p patch flattened pixel-major ``(p1, p2, c)``,
    LayerNorm, Linear to ``dim``, LayerNorm. (B, C, H, W) -> (B, (H/p)(W/p), dim)."""

    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        patch_dim = in_chans * patch_size ** 2
        self.norm_in = nn.LayerNorm(patch_dim)
        self.proj = nn.Linear(patch_dim, dim)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f"image {H}x{W} is not a whole number of {p}x{p} patches; "
                             f"give a size that is a multiple of {p}")
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, p, C)
        return self.norm_out(self.proj(self.norm_in(x.reshape(B, (H // p) * (W // p), -1))))


class Transformer(nn.Module):
    """``depth`` pre-LN blocks of :class:`MultiHeadAttention` and :class:`FeedForward`, then a
    final LayerNorm when ``final_norm`` (vit-pytorch's ViT and T2T transformers end in one).

    (B, N, dim) -> (B, N, dim); ``drop_path`` is the stochastic-depth rate of every block.
    """

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int,
                 final_norm: bool, drop_path: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(MultiHeadAttention(dim, heads, dim_head), FeedForward(dim, mlp_dim),
                             drop_path) for _ in range(depth))
        self.norm = nn.LayerNorm(dim) if final_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
