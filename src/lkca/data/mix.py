"""Mixup and CutMix per batch, as in the SPT recipe (docs/recipe.md).

Per batch: with probability ``mix_prob`` mix, else not; when mixing, CutMix with probability
``cutmix_prob``, else Mixup; ``lam ~ Beta(alpha, alpha)`` (Mixup) or ``Beta(beta, beta)``
(CutMix); the partner of image i is image ``perm[i]`` for a random permutation of the batch. The
loss is ``lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b)`` with label smoothing.

Randomness: the batch-level draws (mix or not, which one, ``lam``, the CutMix box) come from
torch's global CPU generator, the permutation from the global generator of the batch's device.
Under DDP, a trainer that seeds the CPU generator identically on every rank (and draws nothing
rank-dependent from it) gets the same decision and ``lam`` on all ranks; every rank mixes within
its own shard. Saving ``torch.get_rng_state()`` (and the CUDA states) captures all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

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


def sample_lam(concentration: float) -> float:
    """``lam ~ Beta(c, c)`` from torch's global CPU generator; ``c == 0`` gives 1 (no mixing)."""
    if concentration <= 0:
        return 1.0
    c = torch.tensor(float(concentration))
    return float(torch.distributions.Beta(c, c).sample())


def mixup(images: torch.Tensor, targets: torch.Tensor, lam: float,
          perm: torch.Tensor) -> MixedBatch:
    """``lam * images + (1 - lam) * images[perm]`` (Zhang et al. 2018)."""
    mixed = images.mul(lam).add_(images[perm], alpha=1.0 - lam)
    return MixedBatch(mixed, targets, targets[perm], lam, "mixup")


def cutmix_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """The CutMix box ``(y1, y2, x1, x2)`` for ``lam`` (Yun et al. 2019, ``rand_bbox``): sides
    ``sqrt(1 - lam)`` of the image's, centre uniform, clipped to the image. CPU generator."""
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy = int(torch.randint(height, (1,)))
    cx = int(torch.randint(width, (1,)))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return y1, y2, x1, x2


def cutmix(images: torch.Tensor, targets: torch.Tensor, lam: float,
           perm: torch.Tensor) -> MixedBatch:
    """Paste the same box of ``images[perm]`` into every image; ``lam`` is corrected to the
    fraction of each image that is left (1 - box area / image area)."""
    H, W = images.shape[-2:]
    y1, y2, x1, x2 = cutmix_box(H, W, lam)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / (H * W)
    return MixedBatch(mixed, targets, targets[perm], lam, "cutmix")


def mix_batch(images: torch.Tensor, targets: torch.Tensor,
              config: MixConfig | None = None) -> MixedBatch:
    """Apply the per-batch Mixup/CutMix decision of the recipe to a float batch (B, C, H, W)."""
    cfg = config or MixConfig()
    draw = torch.rand(2)  # CPU: (mix?, CutMix or Mixup?), always both so the stream stays aligned
    if float(draw[0]) >= cfg.mix_prob:
        return MixedBatch(images, targets, targets, 1.0, "none")
    use_cutmix = float(draw[1]) < cfg.cutmix_prob
    lam = sample_lam(cfg.cutmix_beta if use_cutmix else cfg.mixup_alpha)
    perm = torch.randperm(images.shape[0], device=images.device)
    return (cutmix if use_cutmix else mixup)(images, targets, lam, perm)


def mixed_cross_entropy(logits: torch.Tensor, batch: MixedBatch,
                        smoothing: float = 0.1) -> torch.Tensor:
    """``lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b)``, each with label smoothing."""
    loss = F.cross_entropy(logits, batch.targets_a, label_smoothing=smoothing)
    if batch.lam >= 1.0:
        return loss
    loss_b = F.cross_entropy(logits, batch.targets_b, label_smoothing=smoothing)
    return batch.lam * loss + (1.0 - batch.lam) * loss_b
