"""RGB <-> HSV against Python's colorsys (the same hexcone model) on random and edge pixels."""

from __future__ import annotations

import colorsys
import math

import torch

from lkca.seg.hsv import hsv_to_rgb, rgb_to_hsv


def _pixels() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    rand = torch.rand(3, 500, generator=g, dtype=torch.float64)
    edges = torch.tensor([[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1],
                          [1, 1, 0], [0, 1, 1], [1, 0, 1], [0.2, 0.2, 0.6]],
                         dtype=torch.float64).T
    return torch.cat([rand, edges], 1).view(1, 3, 1, -1)  # (1, 3, 1, N)


def test_rgb_to_hsv_equals_colorsys() -> None:
    x = _pixels()
    ours = rgb_to_hsv(x)[0, :, 0].T
    for (r, g, b), (h, s, v) in zip(x[0, :, 0].T.tolist(), ours.tolist()):
        eh, es, ev = colorsys.rgb_to_hsv(r, g, b)
        assert math.isclose(h, eh * 2 * math.pi, abs_tol=1e-9)
        assert math.isclose(s, es, abs_tol=1e-12) and math.isclose(v, ev, abs_tol=1e-12)


def test_hsv_to_rgb_equals_colorsys_and_round_trips() -> None:
    x = _pixels()
    hsv = rgb_to_hsv(x)
    hsv[:, 0] += 2.5  # any real hue (the distortion shifts it) wraps around
    ours = hsv_to_rgb(hsv)[0, :, 0].T
    for (h, s, v), rgb in zip(hsv[0, :, 0].T.tolist(), ours.tolist()):
        expected = colorsys.hsv_to_rgb((h / (2 * math.pi)) % 1.0, s, v)
        assert all(math.isclose(a, e, abs_tol=1e-12) for a, e in zip(rgb, expected))
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-12, rtol=0)
