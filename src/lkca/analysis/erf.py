"""Effective receptive field (ERF), as in RepLKNet's analysis (Ding et al., CVPR 2022, section 5).

The ERF of a model is how much each input pixel moves its centre output: the gradient of the
centre token of the last block's output (summed over its channels) with respect to the input
image, taken in absolute value, summed over the colour channels and averaged over real images.
A model whose receptive field is small has an ERF that is zero outside a small window; the
paper's claim is that LKCA's large kernels see far, like attention.

:func:`area_ratios` condenses a map to the fraction of the image needed to hold 20 / 50 / 90 % of
the gradient mass (RepLKNet's "high-contribution area ratio"; see docs/analysis.md for how ours
differs from theirs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

THRESHOLDS = (0.2, 0.5, 0.9)


def token_map(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The feature map the ERF is read from: (B, C, H, W) images -> (B, C', h, w).

    Models with ``forward_intermediates`` (:class:`lkca.models.vit.VisionTransformer`) give the
    last block's patch-token map (before the final norm, the pooling and the head; class token
    dropped); any other model's ``forward`` must itself return a (B, C', h, w) map (a backbone,
    or a test module).
    """
    intermediates = getattr(model, "forward_intermediates", None)
    out = intermediates(images, indices=1)[0] if intermediates is not None else model(images)
    if out.dim() != 4:
        raise ValueError(
            f"ERF: expected a (B, C, h, w) feature map from the model, got shape {tuple(out.shape)}; "
            "give the model a forward_intermediates(x, indices=1) method returning [last map]"
        )
    return out


ERF_BATCH = 32  # images per forward and backward of effective_receptive_field


def effective_receptive_field(model: nn.Module, images: torch.Tensor,
                              batch_size: int = ERF_BATCH) -> torch.Tensor:
    """The ERF of ``model`` over ``images`` (B, C, H, W) (normalised, as the model sees them).

    For each image: ``g = d(sum_c out[c, h // 2, w // 2]) / d image``, the centre token (for an even
    grid, the one below and right of the middle) of :func:`token_map`; the ERF is
    ``|g|`` summed over the input channels and averaged over the images. Returns (H, W) float32.
    The model is run in eval mode (no dropout / drop path) and restored to its previous mode;
    its parameters get no gradient.
    """
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(f"ERF: expected images (B, C, H, W) with B >= 1, got {tuple(images.shape)}")
    was_training = model.training
    model.eval()
    total = torch.zeros(images.shape[-2:], dtype=torch.float64, device=images.device)
    try:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].detach().float().requires_grad_(True)
            out = token_map(model, x)  # (b, C', h, w)
            h, w = out.shape[-2:]
            centre = out[:, :, h // 2, w // 2].sum()  # images are independent in eval mode
            (grad,) = torch.autograd.grad(centre, x)  # (b, C, H, W)
            total += grad.abs().sum(dim=(0, 1)).double()
    finally:
        model.train(was_training)
    return (total / len(images)).float().cpu()


def area_ratios(erf: torch.Tensor, thresholds: Sequence[float] = THRESHOLDS) -> tuple[float, ...]:
    """For each fraction t: the smallest share of the image area whose pixels hold t of the ERF mass.

    Pixels are taken in decreasing order of ERF value; the result is (number of pixels needed) /
    (all pixels), in (0, 1]. A map concentrated on one pixel gives 1 / (H * W) for every t; a flat
    map gives about t.
    """
    values = erf.detach().flatten().double().abs().sort(descending=True).values
    mass = values.sum()
    if not torch.isfinite(mass) or mass <= 0:
        raise ValueError("ERF: the map is all zero (or not finite); no area holds a share of nothing")
    cumulative = values.cumsum(0)
    ratios = []
    for t in thresholds:
        if not 0.0 < t <= 1.0:
            raise ValueError(f"ERF: thresholds must be in (0, 1], got {t}")
        # first k with cumsum >= t * mass; the relative slack absorbs rounding in the sum
        needed = int(torch.searchsorted(cumulative, t * mass * (1 - 1e-12))) + 1
        ratios.append(min(needed, len(values)) / len(values))
    return tuple(ratios)


def real_images(dataset: str = "digits", data_dir: str | Path | None = None, num_images: int = 64,
                img_size: int | None = None) -> torch.Tensor:
    """The first ``num_images`` test images of a data set, normalised as the model sees them at test
    time: (B, 3, S, S) float32, resized (bilinear, antialiased) when ``img_size`` differs from the
    data set's own size."""
    from lkca.data import dataset_info, load_dataset
    from lkca.data.augment import EvalTransform

    if num_images <= 0:
        raise ValueError(f"num_images must be positive, got {num_images}")
    info = dataset_info(dataset)
    data = load_dataset(info.name, data_dir, "test")
    x = torch.from_numpy(data.images[:num_images]).permute(0, 3, 1, 2).contiguous()  # uint8
    x = EvalTransform(info.mean, info.std)(x)  # (B, 3, H, W) float32
    if img_size is not None and tuple(x.shape[-2:]) != (img_size, img_size):
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", antialias=True)
    return x


__all__ = ["THRESHOLDS", "real_images", "token_map", "effective_receptive_field", "area_ratios"]
