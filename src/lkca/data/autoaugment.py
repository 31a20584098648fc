"""AutoAugment as SPT draws it (aanna0701/SPT_LSA_ViT utils/autoaug.py), batched on the device.

Per image, as SPT's ``__call__`` (autoaug.py:54-56, :108-110, :160-162, :211-216): one of the
policy's 25 sub-policies uniformly; then its first operation with probability p1 and, on the
result, its second with probability p2. A sub-policy names each operation with a magnitude index
0..9 read from SPT's table (autoaug.py:170-185, :class:`MAGNITUDES`); the signed operations
(shear, translate, colour, contrast, sharpness, brightness) flip the sign with probability 1/2 on
every application (transforms.py ``random.choice([-1, 1])``); rotate never does. The operations
are :mod:`lkca.data.autoaugment_ops`, PIL's semantics on uint8 levels.

Batched: all draws for the batch are made at once from torch's generator of the batch's device;
then, per slot, the images are grouped by operation (one host sync per slot) and each of the 14
operations runs once on its group. No per-image Python, so ``torch.manual_seed`` makes it
deterministic and the RNG state resumes it exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from lkca.data.autoaugment_ops import OPERATIONS

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


def operation_level(name: str, magnitude: torch.Tensor, sign: torch.Tensor, height: int,
                    width: int) -> torch.Tensor:
    """The value SPT hands PIL for ``name`` (transforms.py): the signed magnitude for shear, the
    signed magnitude times the side in pixels for translate, ``1 + signed magnitude`` for the
    enhance operations, the magnitude itself otherwise (per image, float64)."""
    signed = magnitude * sign if name in SIGNED else magnitude
    if name in ENHANCE:
        return 1 + signed
    if name == "translateX":
        return signed * width
    if name == "translateY":
        return signed * height
    return signed


class AutoAugment(nn.Module):
    """SPT's ``CIFAR10Policy`` / ``SVHNPolicy`` / ``ImageNetPolicy`` on a batch.

    ``forward(x)``: x is uint8 (B, C, H, W) (C = 3, or 1 for grey), or float in [0, 1] (quantised
    to the 256 levels PIL works on, returned as float in [0, 1]); the result has x's dtype.
    """

    table_ops: torch.Tensor  # (25, 2) operation ids
    table_p: torch.Tensor  # (25, 2) probabilities
    table_mag: torch.Tensor  # (25, 2) magnitudes (float64)

    def __init__(self, policy: str = "cifar10") -> None:
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(f"unknown AutoAugment policy {policy!r}; use one of "
                             f"{', '.join(POLICIES)}")
        self.policy = policy
        rows = POLICIES[policy]
        self.register_buffer("table_ops", torch.tensor(
            [[NAMES.index(r[1]), NAMES.index(r[4])] for r in rows]), persistent=False)
        self.register_buffer("table_p", torch.tensor([[r[0], r[3]] for r in rows]),
                             persistent=False)
        self.register_buffer("table_mag", torch.tensor(
            [[MAGNITUDES[r[1]][r[2]], MAGNITUDES[r[4]][r[5]]] for r in rows],
            dtype=torch.float64), persistent=False)

    def draw(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor,
                                                               torch.Tensor]:
        """Per image and slot: the operation id (-1: not applied), magnitude and sign (B, 2)."""
        sub = torch.randint(len(self.table_ops), (batch,), device=device)  # (B,)
        applied = torch.rand(batch, 2, device=device) < self.table_p.to(device)[sub]
        sign = torch.where(torch.rand(batch, 2, device=device) < 0.5, -1.0, 1.0).double()
        ops = torch.where(applied, self.table_ops.to(device)[sub], -1)
        return ops, self.table_mag.to(device)[sub], sign

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")
        levels = x.float() if x.dtype == torch.uint8 else torch.round(x.float().clamp(0, 1) * 255)
        B, _, H, W = x.shape
        ops, magnitude, sign = self.draw(B, x.device)
        for slot in range(2):
            op = ops[:, slot]
            order = torch.argsort(op, stable=True)
            counts = torch.bincount(op + 1, minlength=len(NAMES) + 1).tolist()  # one host sync
            groups = torch.split(order, counts)
            for k, idx in enumerate(groups[1:]):
                if idx.numel() == 0:
                    continue
                name = NAMES[k]
                level = operation_level(name, magnitude[idx, slot], sign[idx, slot], H, W)
                levels[idx] = OPERATIONS[name](levels[idx], level)
        if x.dtype == torch.uint8:
            return levels.to(torch.uint8)
        return (levels / 255.0).to(x.dtype)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"
