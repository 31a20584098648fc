"""The transformer MLP: Linear, GELU, dropout, Linear, dropout."""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    """Two-layer perceptron applied to every token: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
