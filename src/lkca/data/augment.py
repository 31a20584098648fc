"""The paper's training augmentation as batched on-device tensor ops (docs/recipe.md).

Order, as in SPT's torchvision pipeline (aanna0701/SPT_LSA_ViT main.py:170-216)::

    uint8 (B, C, H, W) -> RandomHorizontalFlip(0.5) -> RandomCrop(H, padding=4, zero fill)
    -> AutoAugment(policy) on uint8 -> float [0, 1] -> normalise -> RandomErasing(0.25, SPT's fill)

Every stage is a few batched tensor ops: AutoAugment is SPT's policies with PIL's operations
(:mod:`lkca.data.autoaugment`), random erasing draws boxes as SPT's utils/random_erasing.py does
(:class:`RandomErasing`). Every random choice is drawn on the host (:mod:`lkca.data.draws`), so
nothing waits for the device; each image's result depends only on the image and its own choices,
so a subset of a batch augments to the same images (what lets each DDP rank augment only the
images it trains on, :mod:`lkca.data.train_stream`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lkca.data.autoaugment import POLICIES as AUTOAUGMENT_POLICIES
from lkca.data.autoaugment import AutoAugment
from lkca.data.draws import Draws, RandomStage, on_device, rng_from_torch
from lkca.errors import ConfigError

if TYPE_CHECKING:
    from lkca.data.base import DatasetInfo

POLICIES = tuple(AUTOAUGMENT_POLICIES)  # "imagenet", "cifar10", "svhn"
ERASING_FILLS = ("spt", "mean")  # RandomErasing's fills (AugmentConfig.erasing_fill)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # SPT utils/dataloader.py
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class AugmentConfig:
    """Values of the training augmentation; the defaults are the CIFAR-10 recipe."""

    hflip: bool = True  # SPT: RandomHorizontalFlip() (p=0.5), all data sets
    crop_padding: int = 4  # SPT: RandomCrop(img_size, padding=4), zero padding
    autoaugment: str | None = "cifar10"  # paper 4.1: CIFAR10 / SVHN / ImageNet policy
    erasing_p: float = 0.25  # SPT --re
    erasing_scale: tuple[float, float] = (0.02, 0.4)  # SPT RandomErasing sl, --re_sh
    erasing_ratio: tuple[float, float] = (0.3, 1 / 0.3)  # SPT --re_r1 and 1/r1
    erasing_fill: str = "spt"  # SPT main.py:212-214, see RandomErasing; "mean": normalised 0
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD

    def __post_init__(self) -> None:
        if self.autoaugment is not None and self.autoaugment not in POLICIES:
            raise ConfigError(
                f"autoaugment={self.autoaugment!r} is not a known policy; use one of "
                f"{', '.join(POLICIES)} or null"
            )
        if self.crop_padding < 0:
            raise ConfigError(f"crop_padding={self.crop_padding} must be >= 0")
        if not 0.0 <= self.erasing_p <= 1.0:
            raise ConfigError(f"erasing_p={self.erasing_p} must be in [0, 1]")
        lo, hi = self.erasing_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f"erasing_scale={self.erasing_scale} must satisfy 0 < lo <= hi <= 1")
        if self.erasing_fill not in ERASING_FILLS:
            raise ConfigError(f"erasing_fill={self.erasing_fill!r} is not one of "
                              f"{', '.join(ERASING_FILLS)}")
        lo, hi = self.erasing_ratio
        if not 0.0 < lo <= hi:
            raise ConfigError(f"erasing_ratio={self.erasing_ratio} must satisfy 0 < lo <= hi")
        _check_stats(self.mean, self.std)

    @classmethod
    def from_dataset(cls, info: DatasetInfo, **overrides: Any) -> AugmentConfig:
        """The recipe for a data set described by :class:`lkca.data.base.DatasetInfo`."""
        values: dict[str, Any] = {
            "hflip": info.hflip, "crop_padding": info.crop_padding,
            "autoaugment": info.autoaugment_policy, "mean": tuple(info.mean), "std": tuple(info.std),
        }
        return cls(**{**values, **overrides})


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> None:
    if len(mean) != len(std) or len(mean) == 0:
        raise ConfigError(f"mean {tuple(mean)} and std {tuple(std)} need one value per channel")
    if any(s <= 0 for s in std):
        raise ConfigError(f"std {tuple(std)} must be positive")


def _check_batch(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")


class RandomHorizontalFlip(RandomStage):
    """Mirror each image left-right with probability ``p`` (any dtype)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def draw(self, n: int, size: tuple[int, int], rng: np.random.Generator) -> Draws:
        return {"flip": rng.random(n) < self.p}

    def transform(self, x: torch.Tensor, draws: Draws) -> torch.Tensor:
        flip = on_device(draws["flip"], x.device).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(-1), x)


class RandomPadCrop(RandomStage):
    """torchvision's ``RandomCrop(size=(H, W), padding=p)``: zero-pad by ``p`` on every side, then
    take an H x W window at a uniform offset, per image; content moves by at most ``p`` pixels."""

    def __init__(self, padding: int = 4) -> None:
        super().__init__()
        self.padding = padding

    def draw(self, n: int, size: tuple[int, int], rng: np.random.Generator) -> Draws:
        return {"offset": rng.integers(0, 2 * self.padding + 1, (n, 2))}  # (dy, dx) per image

    def transform(self, x: torch.Tensor, draws: Draws) -> torch.Tensor:
        p = self.padding
        if p == 0:
            return x
        B, C, H, W = x.shape
        padded = F.pad(x, (p, p, p, p)).flatten(2)  # (B, C, (H+2p)*(W+2p))
        offset = on_device(draws["offset"], x.device)  # (B, 2)
        dy, dx = offset[:, :1, None], offset[:, 1:, None]  # (B, 1, 1) each
        rows = dy + torch.arange(H, device=x.device).view(1, H, 1)  # (B, H, 1)
        cols = dx + torch.arange(W, device=x.device).view(1, 1, W)  # (B, 1, W)
        index = (rows * (W + 2 * p) + cols).view(B, 1, H * W).expand(B, C, H * W)
        return padded.gather(2, index).view(B, C, H, W)


class ToFloat(nn.Module):
    """uint8 [0, 255] -> float32 [0, 1]; a float batch passes through as float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.float().div_(255.0)
        return x.float()


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, on a float batch in [0, 1]."""

    mean: torch.Tensor  # (1, C, 1, 1) buffers
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        _check_stats(mean, std)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"batch has {x.shape[1]} channels but mean/std have {self.mean.shape[1]}"
            )
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


class RandomErasing(RandomStage):
    """SPT's random erasing (aanna0701/SPT_LSA_ViT utils/random_erasing.py:9-44), batched.

    With probability ``p`` per image (:18), up to ``attempts`` (100) boxes are drawn: area
    ``uniform(*scale) * H * W``, aspect ``uniform(*ratio)`` (uniform, not log-uniform),
    ``h = round(sqrt(area * aspect))``, ``w = round(sqrt(area / aspect))``; the first box with
    ``h < H`` and ``w < W`` (strictly, :34) is placed at a uniform top-left corner and filled with
    ``fill[c]`` in channel c; an image where no draw fits is left as it is. The boxes are drawn on
    the host in double precision, as SPT's Python does, all 100 attempts of every image at once;
    the device gets each image's box (top, left, h, w), h = w = 0 for an image left as it is.

    ``fill`` is in the space of ``x``. SPT erases after normalisation with ``mean=stat[0]``
    (main.py:212-214): the data set's raw channel means are written into the normalised image
    (``erasing_fill="spt"``); ``fill`` of zeros is the data set's mean colour (``"mean"``).
    Input and output: float (B, C, H, W).
    """

    fill: torch.Tensor  # (1, C, 1, 1) buffer

    def __init__(self, p: float, scale: tuple[float, float], ratio: tuple[float, float],
                 fill: Sequence[float], attempts: int = 100) -> None:
        super().__init__()
        self.p, self.scale, self.ratio, self.attempts = p, scale, ratio, attempts
        self.register_buffer("fill", torch.tensor(fill, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)

    def draw(self, n: int, size: tuple[int, int], rng: np.random.Generator) -> Draws:
        H, W = size
        apply = rng.random(n) < self.p  # (n,)
        u = rng.random((2, n, self.attempts))
        area = (self.scale[0] + (self.scale[1] - self.scale[0]) * u[0]) * (H * W)
        aspect = self.ratio[0] + (self.ratio[1] - self.ratio[0]) * u[1]
        h = np.round(np.sqrt(area * aspect))  # (n, attempts); half to even, as Python's round
        w = np.round(np.sqrt(area / aspect))
        fits = (h < H) & (w < W)
        pick = fits.argmax(1)  # the first box that fits
        apply &= fits.any(1)
        h, w = h[np.arange(n), pick], w[np.arange(n), pick]
        corner = rng.random((2, n))  # randint(0, H - h) and randint(0, W - w)
        top, left = np.floor(corner[0] * (H - h + 1)), np.floor(corner[1] * (W - w + 1))
        box = np.stack([top, left, h, w], 1).astype(np.int64)
        box[~apply, 2:] = 0
        return {"box": box}

    def transform(self, x: torch.Tensor, draws: Draws) -> torch.Tensor:
        B, _, H, W = x.shape
        box = on_device(draws["box"], x.device).view(B, 4, 1, 1)
        top, left, h, w = box.unbind(1)  # (B, 1, 1) each
        rows = torch.arange(H, device=x.device).view(1, H, 1)
        cols = torch.arange(W, device=x.device).view(1, 1, W)
        inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
        return torch.where(inside.unsqueeze(1), self.fill.to(x), x)


class TrainAugment(nn.Module):
    """The training augmentation of docs/recipe.md, as a sequence of named stages.

    ``forward(x, draws=None)``: x is a uint8 batch (B, C, H, W) (or float in [0, 1]) on any
    device; returns the normalised float32 batch, same shape. ``draws`` are the choices of
    :meth:`draw` (one entry per random stage); omitted, they are drawn from torch's global CPU
    generator (:func:`lkca.data.draws.rng_from_torch`). Stages are children in order
    (``named_children()``), so each can be timed alone: ``flip, crop, autoaugment, to_float,
    normalize, erase``.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        cfg = config or AugmentConfig()
        self.config = cfg
        self.flip = RandomHorizontalFlip(0.5) if cfg.hflip else nn.Identity()
        self.crop = RandomPadCrop(cfg.crop_padding)
        self.autoaugment = AutoAugment(cfg.autoaugment) if cfg.autoaugment else nn.Identity()
        self.to_float = ToFloat()
        self.normalize = Normalize(cfg.mean, cfg.std)
        fill = cfg.mean if cfg.erasing_fill == "spt" else (0.0,) * len(cfg.mean)
        self.erase = (
            RandomErasing(cfg.erasing_p, cfg.erasing_scale, cfg.erasing_ratio, fill)
            if cfg.erasing_p > 0 else nn.Identity()
        )

    def draw(self, n: int, size: tuple[int, int], rng: np.random.Generator) -> Draws:
        """The choices of every random stage for ``n`` images of ``size``, stage by stage."""
        return {name: stage.draw(n, size, rng) for name, stage in self.named_children()
                if isinstance(stage, RandomStage)}

    def forward(self, x: torch.Tensor, draws: Draws | None = None) -> torch.Tensor:
        _check_batch(x)
        if draws is None:
            draws = self.draw(x.shape[0], (x.shape[-2], x.shape[-1]), rng_from_torch())
        for name in ("flip", "crop", "autoaugment"):
            stage = getattr(self, name)
            x = stage(x, draws[name]) if isinstance(stage, RandomStage) else stage(x)
        x = self.normalize(self.to_float(x))
        return self.erase(x, draws["erase"]) if isinstance(self.erase, RandomStage) else x


class EvalTransform(nn.Module):
    """The test transform: uint8 (B, C, H, W) -> normalised float32, nothing random (SPT)."""

    def __init__(self, mean: Sequence[float] = CIFAR10_MEAN,
                 std: Sequence[float] = CIFAR10_STD) -> None:
        super().__init__()
        self.to_float = ToFloat()
        self.normalize = Normalize(mean, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        return self.normalize(self.to_float(x))
