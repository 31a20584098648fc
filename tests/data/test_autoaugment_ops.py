"""Each of the 14 AutoAugment operations, batched, against PIL's on the same real images.

The reference is the PIL call SPT makes (aanna0701/SPT_LSA_ViT utils/transforms.py, the line of
each operation in its docstring), made here image by image on PIL images; the magnitudes are
SPT's table (utils/autoaug.py:170-185) at the lowest, middle and highest index (0, 5, 9), with
both signs where SPT draws one. Images: scikit-learn's digits, upsampled to 32 x 32 RGB with the
three channels made different, and 64 x 64 crops of its two bundled photographs (china.jpg,
flower.jpg), so the operations see real content, flat areas, edges and both image sizes SPT
trains at (CIFAR/SVHN 32, Tiny-ImageNet 64).

Tolerance. The point operations (posterize, solarize, invert, equalize, autocontrast) are exact
integer or double-precision table look-ups in PIL and must match exactly. The geometric and
enhance operations are floating-point sums that PIL truncates to a level (bicubic in Geometry.c,
blend in Blend.c), so a compiler's different rounding (e.g. a fused multiply-add) can move a
value lying on an integer by one level: they may differ by at most 1 level on at most 1 % of the
values, i.e. a mean difference of at most 0.01 level. (With Pillow 13.0 on x86-64, where this was
written, every operation matched exactly.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps
from pil_autoaugment import digits_32, photos_64, spt_pil

from lkca.data.autoaugment import ENHANCE, MAGNITUDES, SIGNED, operation_level
from lkca.data.autoaugment_ops import OPERATIONS

EXACT = ("posterize", "solarize", "invert", "equalize", "autocontrast")


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [digits_32(), photos_64()]


def _cases() -> list[tuple[str, int, int]]:
    return [(name, index, sign) for name in OPERATIONS for index in (0, 5, 9)
            for sign in ((-1, 1) if name in SIGNED else (1,))]


@pytest.mark.parametrize(("name", "index", "sign"), _cases())
def test_operation_equals_pil(images: list[np.ndarray], name: str, index: int, sign: int) -> None:
    for batch in images:
        B, H, W, _ = batch.shape
        level = operation_level(name, torch.full((B,), MAGNITUDES[name][index], dtype=torch.float64),
                                torch.full((B,), float(sign), dtype=torch.float64), H, W)
        ref = np.stack([np.asarray(spt_pil(name, Image.fromarray(a), float(v)))
                        for a, v in zip(batch, level.tolist())])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().contiguous()
        ours = OPERATIONS[name](x, level).permute(0, 2, 3, 1).numpy()
        assert ours.dtype == np.float32 and np.array_equal(ours, np.round(ours))  # on PIL's levels
        diff = np.abs(ours - ref.astype(np.float32))
        if name in EXACT:
            assert diff.max() == 0, f"{name} differs from PIL at {np.argwhere(diff)[:3]}"
        else:
            assert diff.max() <= 1 and (diff > 0).mean() <= 0.01, (diff.max(), diff.mean())


def test_levels_are_spts_values() -> None:
    # transforms.py: enhance factor 1 +- m; translate m * side; shear and the rest as given
    m = torch.tensor([0.3, 0.3], dtype=torch.float64)
    s = torch.tensor([1.0, -1.0], dtype=torch.float64)
    for name in ENHANCE:
        assert operation_level(name, m, s, 32, 64).tolist() == pytest.approx([1.3, 0.7])
    assert operation_level("translateX", m, s, 32, 64).tolist() == pytest.approx([19.2, -19.2])
    assert operation_level("translateY", m, s, 32, 64).tolist() == pytest.approx([9.6, -9.6])
    assert operation_level("shearY", m, s, 32, 64).tolist() == pytest.approx([0.3, -0.3])
    assert operation_level("rotate", m, s, 32, 64).tolist() == pytest.approx([0.3, 0.3])  # no sign


def test_grey_images(images: list[np.ndarray]) -> None:
    # C = 1 is PIL's "L": colour is the identity, contrast blends with the image's own mean
    grey = images[0][..., :1]
    x = torch.from_numpy(grey).permute(0, 3, 1, 2).float().contiguous()
    f = torch.full((len(grey),), 0.4, dtype=torch.float64)
    assert torch.equal(OPERATIONS["color"](x, f), x)
    ref = np.stack([np.asarray(ImageEnhance.Contrast(Image.fromarray(a[..., 0])).enhance(0.4))
                    for a in grey])
    assert np.array_equal(OPERATIONS["contrast"](x, f)[:, 0].numpy(), ref)
    ref = np.stack([np.asarray(ImageOps.equalize(Image.fromarray(a[..., 0]))) for a in grey])
    assert np.array_equal(OPERATIONS["equalize"](x, f)[:, 0].numpy(), ref)
