"""AutoAugment's policies and draws against SPT's (aanna0701/SPT_LSA_ViT utils/autoaug.py).

The sub-policy rows and magnitude ranges below are transcribed from SPT's file (each block with
its lines), independently of the module's own table; the frequency test checks the draws; the
last test replays the draws image by image through PIL, as SPT's ``SubPolicy.__call__`` would.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from pil_autoaugment import digits_32, spt_pil

from lkca.data.autoaugment import MAGNITUDES, NAMES, POLICIES, AutoAugment, operation_level

# SPT utils/autoaug.py, SubPolicy(p1, op1, index1, p2, op2, index2) per line, in file order
SPT_ROWS = {
    "imagenet": """
        0.4 posterize 8 0.6 rotate 9 | 0.6 solarize 5 0.6 autocontrast 5
        0.8 equalize 8 0.6 equalize 3 | 0.6 posterize 7 0.6 posterize 6
        0.4 equalize 7 0.2 solarize 4 | 0.4 equalize 4 0.8 rotate 8
        0.6 solarize 3 0.6 equalize 7 | 0.8 posterize 5 1.0 equalize 2
        0.2 rotate 3 0.6 solarize 8 | 0.6 equalize 8 0.4 posterize 6
        0.8 rotate 8 0.4 color 0 | 0.4 rotate 9 0.6 equalize 2
        0.0 equalize 7 0.8 equalize 8 | 0.6 invert 4 1.0 equalize 8
        0.6 color 4 1.0 contrast 8 | 0.8 rotate 8 1.0 color 2
        0.8 color 8 0.8 solarize 7 | 0.4 sharpness 7 0.6 invert 8
        0.6 shearX 5 1.0 equalize 9 | 0.4 color 0 0.6 equalize 3
        0.4 equalize 7 0.2 solarize 4 | 0.6 solarize 5 0.6 autocontrast 5
        0.6 invert 4 1.0 equalize 8 | 0.6 color 4 1.0 contrast 8
        0.8 equalize 8 0.6 equalize 3""",  # lines 23-51
    "cifar10": """
        0.1 invert 7 0.2 contrast 6 | 0.7 rotate 2 0.3 translateX 9
        0.8 sharpness 1 0.9 sharpness 3 | 0.5 shearY 8 0.7 translateY 9
        0.5 autocontrast 8 0.9 equalize 2 | 0.2 shearY 7 0.3 posterize 7
        0.4 color 3 0.6 brightness 7 | 0.3 sharpness 9 0.7 brightness 9
        0.6 equalize 5 0.5 equalize 1 | 0.6 contrast 7 0.6 sharpness 5
        0.7 color 7 0.5 translateX 8 | 0.3 equalize 7 0.4 autocontrast 8
        0.4 translateY 3 0.2 sharpness 6 | 0.9 brightness 6 0.2 color 8
        0.5 solarize 2 0.0 invert 3 | 0.2 equalize 0 0.6 autocontrast 0
        0.2 equalize 8 0.6 equalize 4 | 0.9 color 9 0.6 equalize 6
        0.8 autocontrast 4 0.2 solarize 8 | 0.1 brightness 3 0.7 color 0
        0.4 solarize 5 0.9 autocontrast 3 | 0.9 translateY 9 0.7 translateY 9
        0.9 autocontrast 2 0.8 solarize 3 | 0.8 equalize 8 0.1 invert 3
        0.7 translateY 9 0.9 autocontrast 1""",  # lines 77-105
    "svhn": """
        0.9 shearX 4 0.2 invert 3 | 0.9 shearY 8 0.7 invert 5
        0.6 equalize 5 0.6 solarize 6 | 0.9 invert 3 0.6 equalize 3
        0.6 equalize 1 0.9 rotate 3 | 0.9 shearX 4 0.8 autocontrast 3
        0.9 shearY 8 0.4 invert 5 | 0.9 shearY 5 0.2 solarize 6
        0.9 invert 6 0.8 autocontrast 1 | 0.6 equalize 3 0.9 rotate 3
        0.9 shearX 4 0.3 solarize 3 | 0.8 shearY 8 0.7 invert 4
        0.9 equalize 5 0.6 translateY 6 | 0.9 invert 4 0.6 equalize 7
        0.3 contrast 3 0.8 rotate 4 | 0.8 invert 5 0.0 translateY 2
        0.7 shearY 6 0.4 solarize 8 | 0.6 invert 4 0.8 rotate 4
        0.3 shearY 7 0.9 translateX 3 | 0.1 shearX 6 0.6 invert 5
        0.7 solarize 2 0.6 translateY 7 | 0.8 shearY 4 0.8 invert 8
        0.7 shearX 9 0.8 translateY 3 | 0.8 shearY 5 0.7 autocontrast 3
        0.7 shearX 2 0.1 invert 5""",  # lines 128-156
}
# SPT utils/autoaug.py:170-185, as numpy computes them there
SPT_RANGES = {
    "shearX": np.linspace(0, 0.3, 10), "shearY": np.linspace(0, 0.3, 10),
    "translateX": np.linspace(0, 150 / 331, 10), "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10), "color": np.linspace(0.0, 0.9, 10),
    "posterize": np.round(np.linspace(8, 4, 10), 0).astype(int),
    "solarize": np.linspace(256, 0, 10), "contrast": np.linspace(0.0, 0.9, 10),
    "sharpness": np.linspace(0.0, 0.9, 10), "brightness": np.linspace(0.0, 0.9, 10),
    "autocontrast": [0] * 10, "equalize": [0] * 10, "invert": [0] * 10,
}


def _spt_rows(policy: str) -> list[tuple]:
    rows = []
    for text in SPT_ROWS[policy].replace("\n", "|").split("|"):
        if text.strip():
            p1, o1, m1, p2, o2, m2 = text.split()
            rows.append((float(p1), o1, int(m1), float(p2), o2, int(m2)))
    return rows


@pytest.mark.parametrize("policy", ["imagenet", "cifar10", "svhn"])
def test_sub_policies_equal_spts(policy: str) -> None:
    rows = _spt_rows(policy)
    assert len(rows) == 25
    assert list(POLICIES[policy]) == rows  # all 25 x (p, operation, index) x 2


def test_magnitudes_equal_spts() -> None:
    assert set(MAGNITUDES) == set(SPT_RANGES) == set(NAMES)
    for name, values in SPT_RANGES.items():
        assert MAGNITUDES[name] == [float(v) for v in values], name  # bit for bit


@pytest.mark.parametrize("policy", ["imagenet", "cifar10", "svhn"])
def test_draw_frequencies_match_the_probabilities(policy: str) -> None:
    # Each (slot, operation) count over n images is binomial with p = sum over sub-policies
    # naming it of p_slot / 25; every count must lie within 5 standard deviations (a false alarm
    # about 1 in 1.7 million per count; fixed seed). Signs: half negative, same bound.
    n = 40_000
    draws = AutoAugment(policy).draw(n, (32, 32), np.random.default_rng(0))
    ops, magnitude, sign = (torch.from_numpy(draws[k]) for k in ("ops", "magnitude", "sign"))
    for slot in range(2):
        for k, name in enumerate([*NAMES, None]):
            expected = sum(r[3 * slot] for r in POLICIES[policy] if r[3 * slot + 1] == name) / 25
            if name is None:  # not applied
                expected = 1 - sum(r[3 * slot] for r in POLICIES[policy]) / 25
                k = -1
            count = int((ops[:, slot] == k).sum())
            sd = math.sqrt(n * expected * (1 - expected))
            assert abs(count - n * expected) <= 5 * sd + 1e-9, (slot, name, count, n * expected)
    negative = int((sign < 0).sum())
    assert abs(negative - n) <= 5 * math.sqrt(2 * n * 0.25)  # 2n signs, p = 1/2


def _spt_reference(image: np.ndarray, ops: list[int], magnitude: list[float],
                   sign: list[float]) -> np.ndarray:
    """SPT's SubPolicy.__call__ (autoaug.py:211-216) for given draws, on one PIL image."""
    im = Image.fromarray(image)
    for op, m, s in zip(ops, magnitude, sign):
        if op >= 0:
            name = NAMES[op]
            v = operation_level(name, torch.tensor([m], dtype=torch.float64),
                                torch.tensor([s], dtype=torch.float64), im.size[1], im.size[0])
            im = spt_pil(name, im, float(v))
    return np.asarray(im)


@pytest.mark.parametrize("policy", ["imagenet", "cifar10", "svhn"])
def test_batch_equals_spts_per_image_chain(policy: str) -> None:
    images = digits_32()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    aug = AutoAugment(policy)
    draws = aug.draw(len(images), (32, 32), np.random.default_rng(1))
    out = aug(x, draws).permute(0, 2, 3, 1).numpy()
    ops, magnitude, sign = (torch.from_numpy(draws[k]) for k in ("ops", "magnitude", "sign"))
    assert (ops >= 0).any(1).float().mean() > 0.5  # the test does exercise operations
    for i, image in enumerate(images):
        ref = _spt_reference(image, ops[i].tolist(), magnitude[i].tolist(), sign[i].tolist())
        assert np.abs(out[i].astype(int) - ref.astype(int)).max() <= 1, i


def test_float_input_and_errors() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    aug = AutoAugment("cifar10")
    torch.manual_seed(2)
    a = aug(x)
    torch.manual_seed(2)
    b = aug(x.float() / 255)
    assert a.dtype == torch.uint8 and b.dtype == torch.float32
    assert torch.equal(torch.round(b * 255).to(torch.uint8), a)
    with pytest.raises(ValueError, match="unknown AutoAugment policy"):
        AutoAugment("cifar100")
    with pytest.raises(ValueError, match="image batch"):
        aug(x[0])
