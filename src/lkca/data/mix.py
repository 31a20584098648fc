"""Mixup and CutMix per batch, as in the SPT recipe (docs/recipe.md).

Per batch: with probability ``mix_prob`` mix, else not; when mixing, CutMix with probability
``cutmix_prob``, else Mixup; ``lam ~ Beta(alpha, alpha)`` (Mixup) or ``Beta(beta, beta)``
(CutMix); the partner of image i is image ``perm[i]`` for a random permutation of the batch. The
loss is ``lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b)`` with label smoothing.

Randomness: every choice (mix or not, which one, ``lam``, the CutMix box, the permutation) is
drawn on the host (:func:`draw_mix`, :mod:`lkca.data.draws`), so ``lam`` and ``mode`` are host
values and nothing reads the device. Training draws them per global batch from a generator keyed
by the batch's place in the epoch (:mod:`lkca.data.train_stream`): the partner of image i may be
any image of the GLOBAL batch, whatever the number of processes. ``mix_batch`` alone draws them
from torch's global CPU generator (``torch.manual_seed`` makes it deterministic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from lkca.data.draws import on_device, rng_from_torch
from lkca.errors import ConfigError


@dataclass(frozen=True)
class MixConfig:
    """Values of the per-batch Mixup/CutMix; defaults are SPT's."""

    mix_prob: float = 0.5  # SPT --mix_prob
    cutmix_prob: float = 0.5  # SPT: switching_prob < 0.5 -> CutMix
    mixup_alpha: float = 1.0  # SPT --alpha
    cutmix_beta: float = 1.0  # SPT --beta

    def __post_init__(self) -> None:
        for name in ("mix_prob", "cutmix_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)} must be in [0, 1]")
        for name in ("mixup_alpha", "cutmix_beta"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")


class MixedBatch(NamedTuple):
    """A (possibly) mixed batch: ``images`` with targets ``targets_a`` weighted ``lam`` and
    ``targets_b`` weighted ``1 - lam``; ``mode`` is ``"none"``, ``"mixup"`` or ``"cutmix"``."""

    images: torch.Tensor
    targets_a: torch.Tensor
    targets_b: torch.Tensor
    lam: float
    mode: str = "none"


class MixDraw(NamedTuple):
    """The mixing choices of one batch, drawn on the host: ``mode``, ``lam`` (for CutMix already
    the fraction of each image left), the CutMix ``box`` ``(y1, y2, x1, x2)`` and the partner
    permutation ``perm`` (the identity when not mixing)."""

    mode: str
    lam: float
    box: tuple[int, int, int, int]
    perm: np.ndarray


def draw_mix(n: int, size: tuple[int, int], config: MixConfig,
             rng: np.random.Generator) -> MixDraw:
    """The recipe's per-batch decision for a batch of ``n`` images of ``size = (H, W)``.

    ``lam ~ Beta(c, c)`` (``c == 0`` gives 1); the CutMix box is Yun et al. 2019's ``rand_bbox``:
    sides ``sqrt(1 - lam)`` of the image's (truncated to pixels), centre uniform, clipped to the
    image, and ``lam`` corrected to the area left."""
    H, W = size
    none = MixDraw("none", 1.0, (0, 0, 0, 0), np.arange(n))
    decide = rng.random(2)  # (mix?, CutMix or Mixup?), always both
    if decide[0] >= config.mix_prob:
        return none
    use_cutmix = bool(decide[1] < config.cutmix_prob)
    c = config.cutmix_beta if use_cutmix else config.mixup_alpha
    lam = float(rng.beta(c, c)) if c > 0 else 1.0
    perm = rng.permutation(n)
    if not use_cutmix:
        return MixDraw("mixup", lam, (0, 0, 0, 0), perm)
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(H * cut), int(W * cut)
    cy, cx = int(rng.integers(H)), int(rng.integers(W))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, H)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, W)
    return MixDraw("cutmix", 1.0 - (y2 - y1) * (x2 - x1) / (H * W), (y1, y2, x1, x2), perm)


def mix_rows(images: torch.Tensor, partners: torch.Tensor, weight: np.ndarray,
             box: np.ndarray) -> torch.Tensor:
    """Row i: ``weight[i] * images[i] + (1 - weight[i]) * partners[i]`` (Mixup; a weight of 1
    keeps the image as it is), then the CutMix box ``box[i] = (y1, y2, x1, x2)`` pasted from
    ``partners[i]`` (an empty box pastes nothing). ``weight`` (R,) and ``box`` (R, 4) are host
    arrays; the rows may come from different batches, each with its own choices."""
    R, _, H, W = images.shape
    w = on_device(weight.astype(np.float32), images.device).view(R, 1, 1, 1)
    y1, y2, x1, x2 = on_device(box, images.device).view(R, 4, 1, 1).unbind(1)  # (R, 1, 1) each
    rows = torch.arange(H, device=images.device).view(1, H, 1)
    cols = torch.arange(W, device=images.device).view(1, 1, W)
    pasted = (rows >= y1) & (rows < y2) & (cols >= x1) & (cols < x2)  # (R, H, W)
    blended = images * w + partners * (1.0 - w)
    return torch.where(pasted.unsqueeze(1), partners, blended)


def mix_weights(draw: MixDraw, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mix_rows`'s ``weight`` (rows,) and ``box`` (rows, 4) for ``rows`` images of one
    batch mixed by ``draw``."""
    weight = np.full(rows, draw.lam if draw.mode == "mixup" else 1.0)
    return weight, np.tile(np.array(draw.box, dtype=np.int64), (rows, 1))


def mix_batch(images: torch.Tensor, targets: torch.Tensor, config: MixConfig | None = None,
              draw: MixDraw | None = None) -> MixedBatch:
    """Apply the per-batch Mixup/CutMix decision of the recipe to a float batch (B, C, H, W);
    ``draw`` omitted: :func:`draw_mix` from torch's global CPU generator."""
    cfg = config or MixConfig()
    B, _, H, W = images.shape
    if draw is None:
        draw = draw_mix(B, (H, W), cfg, rng_from_torch())
    if draw.mode == "none":
        return MixedBatch(images, targets, targets, 1.0, "none")
    perm = on_device(draw.perm, images.device)
    weight, box = mix_weights(draw, B)
    mixed = mix_rows(images, images[perm], weight, box)
    return MixedBatch(mixed, targets, targets[perm], draw.lam, draw.mode)


def mixed_cross_entropy(logits: torch.Tensor, batch: MixedBatch,
                        smoothing: float = 0.1) -> torch.Tensor:
    """``lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b)``, each with label smoothing."""
    loss = F.cross_entropy(logits, batch.targets_a, label_smoothing=smoothing)
    if batch.lam >= 1.0:
        return loss
    loss_b = F.cross_entropy(logits, batch.targets_b, label_smoothing=smoothing)
    return batch.lam * loss + (1.0 - batch.lam) * loss_b
