"""RGB <-> HSV on image batches, for the photometric distortion's hue and saturation steps.

The hexcone model (Smith 1978; Python's ``colorsys``): v = max(r, g, b), s = (v - min) / v, and
the hue in radians in [0, 2 pi), 60 degrees per sextant, measured from red. tests/seg/test_hsv.py
compares both directions with ``colorsys`` on random pixels.
"""

from __future__ import annotations

import math

import torch

SEXTANT = math.pi / 3  # 60 degrees


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV, h in [0, 2 pi), s and v in [0, 1]; grey pixels get h 0
    and black ones s 0."""
    r, g, b = rgb.unbind(1)
    v = rgb.amax(1)
    delta = v - rgb.amin(1)
    s = torch.where(v > 0, delta / v.clamp(min=1e-12), 0.0)
    safe = delta.clamp(min=1e-12)
    h = torch.where(v == r, torch.remainder((g - b) / safe, 6.0),
                    torch.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = torch.where(delta > 0, h * SEXTANT, 0.0)
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) HSV (h in radians, any real; s, v in [0, 1]) -> RGB in [0, 1]."""
    h, s, v = hsv.unbind(1)
    h6 = torch.remainder(h / SEXTANT, 6.0)
    sextant = torch.floor(h6).clamp(max=5)
    f = h6 - sextant
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # (r, g, b) per sextant 0..5: (v t p) (q v p) (p v t) (p q v) (t p v) (v p q)
    table = torch.stack([torch.stack(c, 0) for c in (
        (v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0)  # (6, 3, B, H, W)
    index = sextant.long().unsqueeze(0).unsqueeze(0).expand(1, 3, *h.shape)
    return table.gather(0, index).squeeze(0).movedim(0, 1)  # (B, 3, H, W)
