"""AutoAugment as SPT draws it (aanna0701/SPT_LSA_ViT utils/autoaug.py), batched on the device.

Per image, as SPT's ``__call__`` (autoaug.py:54-56, :108-110, :160-162, :211-216): one of the
policy's 25 sub-policies uniformly; then its first operation with probability p1 and, on the
result, its second with probability p2. A sub-policy names each operation with a magnitude index
0..9 read from SPT's table (autoaug.py:170-185, :class:`MAGNITUDES`); the signed operations
(shear, translate, colour, contrast, sharpness, brightness) flip the sign with probability 1/2 on
every application (transforms.py ``random.choice([-1, 1])``); rotate never does. The operations
are :mod:`lkca.data.autoaugment_ops`, PIL's semantics on uint8 levels.

Batched: all draws for the batch are made at once on the host (:mod:`lkca.data.draws`); then,
per slot, the images are grouped by operation on the host (nothing read back from the device)
and each of the 14 operations runs once on its group: an ``index_select``, the operation, an
``index_copy_``. No per-image Python, and no host wait.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lkca.data.autoaugment_ops import OPERATIONS
from lkca.data.draws import Draws, RandomStage, on_device

SubPolicy = tuple[float, str, int, float, str, int]  # (p1, op1, index1, p2, op2, index2)

# SPT utils/autoaug.py, the SubPolicy(...) rows in file order (fillcolor omitted: always 128).
POLICIES: dict[str, tuple[SubPolicy, ...]] = {
    "imagenet": (  # ImageNetPolicy, autoaug.py:23-51
        (0.4, "posterize", 8, 0.6, "rotate", 9), (0.6, "solarize", 5, 0.6, "autocontrast", 5),
        (0.8, "equalize", 8, 0.6, "equalize", 3), (0.6, "posterize", 7, 0.6, "posterize", 6),
        (0.4, "equalize", 7, 0.2, "solarize", 4), (0.4, "equalize", 4, 0.8, "rotate", 8),
        (0.6, "solarize", 3, 0.6, "equalize", 7), (0.8, "posterize", 5, 1.0, "equalize", 2),
        (0.2, "rotate", 3, 0.6, "solarize", 8), (0.6, "equalize", 8, 0.4, "posterize", 6),
        (0.8, "rotate", 8, 0.4, "color", 0), (0.4, "rotate", 9, 0.6, "equalize", 2),
        (0.0, "equalize", 7, 0.8, "equalize", 8), (0.6, "invert", 4, 1.0, "equalize", 8),
        (0.6, "color", 4, 1.0, "contrast", 8), (0.8, "rotate", 8, 1.0, "color", 2),
        (0.8, "color", 8, 0.8, "solarize", 7), (0.4, "sharpness", 7, 0.6, "invert", 8),
        (0.6, "shearX", 5, 1.0, "equalize", 9), (0.4, "color", 0, 0.6, "equalize", 3),
        (0.4, "equalize", 7, 0.2, "solarize", 4), (0.6, "solarize", 5, 0.6, "autocontrast", 5),
        (0.6, "invert", 4, 1.0, "equalize", 8), (0.6, "color", 4, 1.0, "contrast", 8),
        (0.8, "equalize", 8, 0.6, "equalize", 3),
    ),
    "cifar10": (  # CIFAR10Policy, autoaug.py:77-105
        (0.1, "invert", 7, 0.2, "contrast", 6), (0.7, "rotate", 2, 0.3, "translateX", 9),
        (0.8, "sharpness", 1, 0.9, "sharpness", 3), (0.5, "shearY", 8, 0.7, "translateY", 9),
        (0.5, "autocontrast", 8, 0.9, "equalize", 2), (0.2, "shearY", 7, 0.3, "posterize", 7),
        (0.4, "color", 3, 0.6, "brightness", 7), (0.3, "sharpness", 9, 0.7, "brightness", 9),
        (0.6, "equalize", 5, 0.5, "equalize", 1), (0.6, "contrast", 7, 0.6, "sharpness", 5),
        (0.7, "color", 7, 0.5, "translateX", 8), (0.3, "equalize", 7, 0.4, "autocontrast", 8),
        (0.4, "translateY", 3, 0.2, "sharpness", 6), (0.9, "brightness", 6, 0.2, "color", 8),
        (0.5, "solarize", 2, 0.0, "invert", 3), (0.2, "equalize", 0, 0.6, "autocontrast", 0),
        (0.2, "equalize", 8, 0.6, "equalize", 4), (0.9, "color", 9, 0.6, "equalize", 6),
        (0.8, "autocontrast", 4, 0.2, "solarize", 8), (0.1, "brightness", 3, 0.7, "color", 0),
        (0.4, "solarize", 5, 0.9, "autocontrast", 3), (0.9, "translateY", 9, 0.7, "translateY", 9),
        (0.9, "autocontrast", 2, 0.8, "solarize", 3), (0.8, "equalize", 8, 0.1, "invert", 3),
        (0.7, "translateY", 9, 0.9, "autocontrast", 1),
    ),
    "svhn": (  # SVHNPolicy, autoaug.py:128-156
        (0.9, "shearX", 4, 0.2, "invert", 3), (0.9, "shearY", 8, 0.7, "invert", 5),
        (0.6, "equalize", 5, 0.6, "solarize", 6), (0.9, "invert", 3, 0.6, "equalize", 3),
        (0.6, "equalize", 1, 0.9, "rotate", 3), (0.9, "shearX", 4, 0.8, "autocontrast", 3),
        (0.9, "shearY", 8, 0.4, "invert", 5), (0.9, "shearY", 5, 0.2, "solarize", 6),
        (0.9, "invert", 6, 0.8, "autocontrast", 1), (0.6, "equalize", 3, 0.9, "rotate", 3),
        (0.9, "shearX", 4, 0.3, "solarize", 3), (0.8, "shearY", 8, 0.7, "invert", 4),
        (0.9, "equalize", 5, 0.6, "translateY", 6), (0.9, "invert", 4, 0.6, "equalize", 7),
        (0.3, "contrast", 3, 0.8, "rotate", 4), (0.8, "invert", 5, 0.0, "translateY", 2),
        (0.7, "shearY", 6, 0.4, "solarize", 8), (0.6, "invert", 4, 0.8, "rotate", 4),
        (0.3, "shearY", 7, 0.9, "translateX", 3), (0.1, "shearX", 6, 0.6, "invert", 5),
        (0.7, "solarize", 2, 0.6, "translateY", 7), (0.8, "shearY", 4, 0.8, "invert", 8),
        (0.7, "shearX", 9, 0.8, "translateY", 3), (0.8, "shearY", 5, 0.7, "autocontrast", 3),
        (0.7, "shearX", 2, 0.1, "invert", 5),
    ),
}


def _linspace(start: float, stop: float) -> list[float]:
    """numpy's ``linspace(start, stop, 10)``: start + i * (stop - start) / 9, the last exactly stop."""
    step = (stop - start) / 9
    return [start + i * step for i in range(9)] + [stop]


# autoaug.py:170-185: the magnitude of index 0..9; the point operations take none.
MAGNITUDES: dict[str, list[float]] = {
    "shearX": _linspace(0, 0.3), "shearY": _linspace(0, 0.3),
    "translateX": _linspace(0, 150 / 331), "translateY": _linspace(0, 150 / 331),
    "rotate": _linspace(0, 30), "color": _linspace(0.0, 0.9),
    "posterize": [float(round(v)) for v in _linspace(8, 4)],  # 8 8 7 7 6 6 5 5 4 4 bits
    "solarize": _linspace(256, 0), "contrast": _linspace(0.0, 0.9),
    "sharpness": _linspace(0.0, 0.9), "brightness": _linspace(0.0, 0.9),
    "autocontrast": [0.0] * 10, "equalize": [0.0] * 10, "invert": [0.0] * 10,
}
SIGNED = ("shearX", "shearY", "translateX", "translateY", "color", "contrast", "sharpness",
          "brightness")  # transforms.py: magnitude * random.choice([-1, 1])
ENHANCE = ("color", "contrast", "sharpness", "brightness")  # PIL factor 1 + magnitude * sign
NAMES = tuple(OPERATIONS)  # operation id -> name


def operation_level(name: str, magnitude: Any, sign: Any, height: int, width: int) -> Any:
    """The value SPT hands PIL for ``name`` (transforms.py): the signed magnitude for shear, the
    signed magnitude times the side in pixels for translate, ``1 + signed magnitude`` for the
    enhance operations, the magnitude itself otherwise (per image, float64; numpy arrays or
    tensors)."""
    signed = magnitude * sign if name in SIGNED else magnitude
    if name in ENHANCE:
        return 1 + signed
    if name == "translateX":
        return signed * width
    if name == "translateY":
        return signed * height
    return signed


class AutoAugment(RandomStage):
    """SPT's ``CIFAR10Policy`` / ``SVHNPolicy`` / ``ImageNetPolicy`` on a batch.

    ``forward(x, draws=None)``: x is uint8 (B, C, H, W) (C = 3, or 1 for grey), or float in
    [0, 1] (quantised to the 256 levels PIL works on, returned as float in [0, 1]); the result has
    x's dtype. ``draws`` are :meth:`draw`'s (omitted: drawn from torch's global CPU generator).
    """

    def __init__(self, policy: str = "cifar10") -> None:
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(f"unknown AutoAugment policy {policy!r}; use one of "
                             f"{', '.join(POLICIES)}")
        self.policy = policy
        rows = POLICIES[policy]
        self.table_ops = np.array([[NAMES.index(r[1]), NAMES.index(r[4])] for r in rows])  # (25, 2)
        self.table_p = np.array([[r[0], r[3]] for r in rows])  # (25, 2) probabilities
        self.table_mag = np.array(  # (25, 2) magnitudes (float64)
            [[MAGNITUDES[r[1]][r[2]], MAGNITUDES[r[4]][r[5]]] for r in rows])

    def draw(self, n: int, size: tuple[int, int], rng: np.random.Generator) -> Draws:
        """Per image and slot (n, 2): the operation id ``ops`` (-1: not applied), its
        ``magnitude`` and ``sign``."""
        sub = rng.integers(len(self.table_ops), size=n)  # (n,)
        applied = rng.random((n, 2)) < self.table_p[sub]
        sign = np.where(rng.random((n, 2)) < 0.5, -1.0, 1.0)
        return {"ops": np.where(applied, self.table_ops[sub], -1),
                "magnitude": self.table_mag[sub], "sign": sign}

    def transform(self, x: torch.Tensor, draws: Draws) -> torch.Tensor:
        levels = x.float() if x.dtype == torch.uint8 else torch.round(x.float().clamp(0, 1) * 255)
        _, _, H, W = x.shape
        for slot in range(2):
            op = draws["ops"][:, slot]
            order = np.argsort(op, kind="stable")  # grouped by operation, on the host
            counts = np.bincount(op + 1, minlength=len(NAMES) + 1)[1:]  # images per operation
            order = order[len(op) - counts.sum():]  # drop the images that apply nothing
            if not len(order):
                continue
            names = [NAMES[k] for k in np.flatnonzero(counts)]
            sizes = [int(c) for c in counts if c]
            groups = np.split(order, np.cumsum(sizes)[:-1])
            level = np.concatenate([
                operation_level(name, draws["magnitude"][idx, slot], draws["sign"][idx, slot], H, W)
                for name, idx in zip(names, groups)])
            index = on_device(order, x.device).split(sizes)
            values = on_device(level, x.device).split(sizes)
            for name, idx, value in zip(names, index, values):  # each operation once
                levels.index_copy_(0, idx, OPERATIONS[name](levels.index_select(0, idx), value))
        if x.dtype == torch.uint8:
            return levels.to(torch.uint8)
        return (levels / 255.0).to(x.dtype)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"
