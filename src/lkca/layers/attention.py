"""Multi-head self-attention (the ViT token mixer) through ``F.scaled_dot_product_attention``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention: qkv projection, SDPA, output projection.

    ``forward(x, grid_size=None)`` takes x (B, N, C) and returns (B, N, C); ``grid_size`` is
    accepted (and ignored) so every token mixer has the same call signature.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int | None = None,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim <= 0 or num_heads <= 0:
            raise ValueError(f"Attention: dim ({dim}) and num_heads ({num_heads}) must be positive")
        if head_dim is None:
            if dim % num_heads:
                raise ValueError(
                    f"Attention: dim ({dim}) must be a multiple of num_heads ({num_heads}), "
                    "or give head_dim"
                )
            head_dim = dim // num_heads
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.softmax = nn.Softmax(dim=-1)  # a module, as SPT's: the paper's MAC count sees it
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int] | None = None) -> torch.Tensor:
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, head_dim)
        drop = self.attn_drop if self.training else 0.0
        if x.device.type == "cpu":
            # SDPA's CPU kernel is ~5% slower for a ViT-B training step at these short sequences
            # (65 tokens) than the plain products (benchmarks/train_step_speed.py); same math
            attn = self.softmax(q @ k.transpose(-2, -1) * self.head_dim ** -0.5)
            out = F.dropout(attn, drop, self.training) @ v  # (B, heads, N, head_dim)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        out = out.transpose(1, 2).reshape(B, N, -1)
        return self.proj_drop(self.proj(out))
