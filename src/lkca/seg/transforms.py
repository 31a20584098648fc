"""ADE20K training and test transforms on tensors (MMSegmentation's ``ade20k.py`` pipeline).

Training, per image on the target device (images differ in size): keep-ratio random resize to
scale (2048, 512) x U(0.5, 2.0), random 512x512 crop whose largest class covers < 75% of the
labelled pixels (up to 10 re-draws), horizontal flip with p = 0.5; then, batched over the padded
crops: photometric distortion, normalisation and zero padding (label 255) to the crop size.
Test: keep-ratio resize to (2048, 512); labels stay at their original size.

Photometric distortion follows MMSegmentation's ``PhotoMetricDistortion`` (each part with
p = 0.5: brightness +-32, contrast x[0.5, 1.5] first or last, saturation x[0.5, 1.5], hue +-18
OpenCV units = +-36 degrees) in float; MMSegmentation rounds to uint8 after each step, we do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lkca.seg.hsv import hsv_to_rgb, rgb_to_hsv
from lkca.seg.normalisation import MEAN, STD

IGNORE_INDEX = 255


def _uniform(lo: float, hi: float, g: torch.Generator | None, n: int | None = None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(() if n is None else (n,), generator=g)


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` on ``device``; from the host to a GPU through pinned (page-locked) memory with a
    non-blocking copy, so the calling thread does not wait for the GPU's queue to drain (the copy
    is ordered on the stream before the operators that read it)."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def to_tensors(image: np.ndarray | torch.Tensor, label: np.ndarray | torch.Tensor | None,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """(H, W, 3) uint8 image -> (3, H, W) float32 0..255 on ``device``; label (H, W) -> uint8
    (host-to-GPU copies: :func:`to_device`)."""
    img = to_device(torch.as_tensor(image), device).permute(2, 0, 1).float()
    lbl = None if label is None else to_device(torch.as_tensor(label, dtype=torch.uint8), device)
    return img, lbl


def rescale_size(h: int, w: int, scale: Sequence[int] = (2048, 512)) -> tuple[int, int]:
    """Keep-ratio size fitting long side <= max(scale) and short side <= min(scale) (mmcv's)."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def resize_pair(image: torch.Tensor, label: torch.Tensor | None, size: Sequence[int]
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Image (3, H, W) float: bilinear; label (H, W) uint8: nearest; both to ``size`` (h, w)."""
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image, label
    img = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
    img = img.round().clamp(0, 255)
    if label is None:
        return img, None
    lbl = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0]
    return img, lbl.to(torch.uint8)


def random_resize(image: torch.Tensor, label: torch.Tensor, scale: Sequence[int] = (2048, 512),
                  ratio_range: Sequence[float] = (0.5, 2.0), generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep-ratio resize to ``scale`` times a ratio drawn from U(ratio_range)."""
    ratio = float(_uniform(ratio_range[0], ratio_range[1], generator))
    target = (int(scale[0] * ratio), int(scale[1] * ratio))
    img, lbl = resize_pair(image, label, rescale_size(image.shape[-2], image.shape[-1], target))
    assert lbl is not None
    return img, lbl


def random_crop(image: torch.Tensor, label: torch.Tensor, crop_size: Sequence[int] = (512, 512),
                cat_max_ratio: float = 0.75, ignore_index: int = IGNORE_INDEX, tries: int = 10,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop (3, H, W) / (H, W) to at most ``crop_size``; as MMSegmentation's ``RandomCrop``, a crop
    whose largest class has >= ``cat_max_ratio`` of the labelled pixels (or that holds one class
    only) is re-drawn up to ``tries`` times, and the last draw is kept."""
    H, W = label.shape
    ch, cw = min(crop_size[0], H), min(crop_size[1], W)

    def draw() -> tuple[int, int]:
        y = int(torch.randint(0, H - ch + 1, (), generator=generator))
        x = int(torch.randint(0, W - cw + 1, (), generator=generator))
        return y, x

    y, x = draw()
    if cat_max_ratio < 1.0:
        for _ in range(tries):
            counts = torch.bincount(label[y : y + ch, x : x + cw].reshape(-1).long(), minlength=256)
            counts[ignore_index] = 0
            present = counts[counts > 0]
            if present.numel() > 1 and float(present.max()) / float(present.sum()) < cat_max_ratio:
                break
            y, x = draw()
    return image[:, y : y + ch, x : x + cw], label[y : y + ch, x : x + cw]


def random_flip(image: torch.Tensor, label: torch.Tensor, prob: float = 0.5,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip image (..., H, W) and label (..., H, W) left-right together with probability ``prob``."""
    if float(torch.rand((), generator=generator)) < prob:
        return image.flip(-1), label.flip(-1)
    return image, label


def photometric_distortion(images: torch.Tensor, generator: torch.Generator | None = None
                           ) -> torch.Tensor:
    """Batched PhotoMetricDistortion: (B, 3, H, W) float RGB 0..255 -> same, parameters per image."""
    B = images.shape[0]
    dev = images.device

    def coin() -> torch.Tensor:
        return torch.rand(B, generator=generator) < 0.5

    def per_image(values: torch.Tensor, on: torch.Tensor, neutral: float) -> torch.Tensor:
        return torch.where(on, values, torch.full_like(values, neutral)).to(dev).view(B, 1, 1, 1)

    brightness = per_image(_uniform(-32, 32, generator, B), coin(), 0.0)
    contrast_first = coin()  # MMSegmentation's mode == 1
    contrast = _uniform(0.5, 1.5, generator, B)
    do_contrast = coin()
    saturation = per_image(_uniform(0.5, 1.5, generator, B), coin(), 1.0)
    hue_units = torch.randint(-18, 19, (B,), generator=generator).float()
    hue = per_image(hue_units * math.pi / 90, coin(), 0.0)  # OpenCV hue unit = 2 degrees

    x = (images + brightness).clamp(0, 255)
    x = (x * per_image(contrast, do_contrast & contrast_first, 1.0)).clamp(0, 255)
    hsv = rgb_to_hsv(x / 255)  # h in [0, 2 pi), s and v in [0, 1]
    h = torch.remainder(hsv[:, :1] + hue, 2 * math.pi)
    s = (hsv[:, 1:2] * saturation).clamp(0, 1)
    x = hsv_to_rgb(torch.cat([h, s, hsv[:, 2:]], dim=1)) * 255
    return (x * per_image(contrast, do_contrast & ~contrast_first, 1.0)).clamp(0, 255)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB 0..255 -> (x - MEAN) / STD."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


@dataclass
class TrainTransform:
    """The ADE20K training pipeline: ``transform(samples, device, generator)`` with samples a list
    of (image (H, W, 3) uint8, label (H, W) uint8 reduced) -> (images (B, 3, h, w) float32
    normalised, labels (B, h, w) int64 with ``ignore_index`` in padding), h, w = ``crop_size``."""

    scale: tuple[int, int] = (2048, 512)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    crop_size: tuple[int, int] = (512, 512)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric: bool = True
    ignore_index: int = IGNORE_INDEX

    def __call__(self, samples: Sequence[tuple[np.ndarray, np.ndarray]],
                 device: torch.device | str = "cpu", generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        ch, cw = self.crop_size
        images = torch.zeros(len(samples), 3, ch, cw, device=device)
        labels = torch.full((len(samples), ch, cw), self.ignore_index, dtype=torch.int64, device=device)
        valid = torch.zeros(len(samples), 1, ch, cw, dtype=torch.bool, device=device)
        for i, (image, label) in enumerate(samples):
            img, lbl = to_tensors(image, label, device)
            assert lbl is not None
            img, lbl = random_resize(img, lbl, self.scale, self.ratio_range, generator)
            img, lbl = random_crop(img, lbl, self.crop_size, self.cat_max_ratio, self.ignore_index,
                                   generator=generator)
            img, lbl = random_flip(img, lbl, self.flip_prob, generator)
            h, w = lbl.shape
            images[i, :, :h, :w], labels[i, :h, :w], valid[i, :, :h, :w] = img, lbl, True
        if self.photometric:
            images = photometric_distortion(images, generator)
        return normalize(images) * valid, labels  # padding is 0 after normalisation, as MMSeg


def resize_for_test(image: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
                   scale: Sequence[int] = (2048, 512)) -> torch.Tensor:
    """Test-time input: (H, W, 3) uint8 -> (1, 3, h, w) normalised, keep-ratio resized to
    ``scale``; predict at that size and resize the logits back to (H, W) for the metrics."""
    img, _ = to_tensors(image, None, device)
    img, _ = resize_pair(img, None, rescale_size(img.shape[-2], img.shape[-1], scale))
    return normalize(img[None])
