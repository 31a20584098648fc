"""The pre-LN transformer block: residual sub-layers ``x = x + DropPath(f(LN(x)))``, in order.

One implementation for every family that builds blocks this way: ViT / ViT-LKCA (one token mixer,
or self-attention then LKCA, then the MLP) and the comparison models of
:mod:`lkca.models.baselines` (their own attention, then their MLP).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lkca.layers.drop_path import DropPath


class PreNormBlock(nn.Module):
    """Token mixers, then a feed-forward, each a pre-LN residual sub-layer with stochastic depth.

    ``mixers`` are ``(name, module)`` pairs, each called as ``module(LN(x), *args)``; ``ffn`` is
    called as ``ffn(LN(x))``. Sub-layer i (1-based, the feed-forward last) keeps its LayerNorm as
    ``norm<i>`` and its module under its name, so one mixer named ``"attn"`` gives the state-dict
    keys ``norm1, attn, norm2, mlp`` (timm's block). Every sub-layer has its own stochastic depth:
    ``drop_path`` is the probability of dropping each branch, drawn independently per branch and
    per sample.

    ``forward(x, *args)``: x (B, N, dim) -> (B, N, dim); ``args`` (a grid, a rotation table ...)
    go to the mixers.
    """

    def __init__(self, dim: int, mixers: Sequence[tuple[str, nn.Module]], ffn: nn.Module,
                 drop_path: float = 0.0, ffn_name: str = "mlp") -> None:
        super().__init__()
        names = [name for name, _ in mixers] + [ffn_name]
        if len(set(names)) != len(names) or any(n.startswith("norm") for n in names):
            raise ValueError(f"PreNormBlock: sub-layer names {names} must be distinct and not "
                             "start with 'norm'")
        self.mixer_names = tuple(name for name, _ in mixers)
        self.ffn_name = ffn_name
        for i, (name, module) in enumerate([*mixers, (ffn_name, ffn)], start=1):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))
            self.add_module(name, module)
        self.drop_path = DropPath(drop_path)

    def sublayers(self) -> list[tuple[nn.Module, nn.Module]]:
        """(LayerNorm, module) of each sub-layer in order, the feed-forward last."""
        names = [*self.mixer_names, self.ffn_name]
        return [(getattr(self, f"norm{i}"), getattr(self, n)) for i, n in enumerate(names, start=1)]

    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        *mixers, (norm, ffn) = self.sublayers()
        for mixer_norm, mixer in mixers:
            x = x + self.drop_path(mixer(mixer_norm(x), *args))
        return x + self.drop_path(ffn(norm(x)))
