"""Attention written out as the paper's authors' vit-pytorch files compute it, for their counts.

The authors count MACs with ptflops (``count.py``), which counts ``F.softmax`` (so also
``nn.Softmax``) but neither ``einsum`` (their q k^T and attn v) nor the ``@`` operator nor
``scaled_dot_product_attention``. Families whose authors' file softmaxes with ``nn.Softmax`` (RvT,
XCiT, CrossViT) attend through :func:`attend`, so ptflops counts our models as theirs; the others
(RegionViT, Twins-SVT: ``Tensor.softmax``, uncounted) use ``scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | torch.Tensor,
           dropout: float = 0.0, training: bool = False) -> torch.Tensor:
    """softmax(q k^T * scale) v, with dropout on the attention map while training.
    q (..., n, d), k (..., m, d), v (..., m, e) -> (..., n, e); ``scale`` a number or a tensor
    broadcasting to (..., n, m) (XCiT's per-head temperature)."""
    attn = F.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    return F.dropout(attn, dropout, training) @ v
