"""The training augmentation: each stage on a known input, the whole pipeline, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lkca.data.augment import (
    AugmentConfig,
    EvalTransform,
    Normalize,
    RandomErasing,
    RandomHorizontalFlip,
    RandomPadCrop,
    TrainAugment,
)
from lkca.errors import ConfigError


def _uint8(b: int = 8, c: int = 3, h: int = 32, w: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, h, w or h), generator=g, dtype=torch.uint8)


def test_flip_flips_exactly_when_applied() -> None:
    x = _uint8()
    assert torch.equal(RandomHorizontalFlip(p=1.0)(x), x.flip(-1))
    assert torch.equal(RandomHorizontalFlip(p=0.0)(x), x)
    torch.manual_seed(0)
    y = RandomHorizontalFlip(p=0.5)(_uint8(b=200, h=4))
    x = _uint8(b=200, h=4)
    flipped = (y == x.flip(-1)).flatten(1).all(1)
    assert torch.all(flipped | (y == x).flatten(1).all(1))  # each image is one or the other
    assert 0.35 < flipped.float().mean() < 0.65


def test_crop_shifts_by_at_most_padding_with_zero_fill() -> None:
    pad, h = 4, 12
    # distinct non-zero values, so the shift of each output image can be recovered
    x = (torch.arange(h * h).view(1, 1, h, h) + 1).repeat(64, 3, 1, 1)
    torch.manual_seed(0)
    y = RandomPadCrop(pad)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    padded = torch.nn.functional.pad(x[0], (pad, pad, pad, pad))
    shifts = set()
    for img in y:
        matches = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if torch.equal(padded[:, dy:dy + h, dx:dx + h], img)]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 10  # offsets vary per image
    assert torch.equal(RandomPadCrop(0)(x), x)


def test_erasing_box_area_aspect_and_fill() -> None:
    cfg = AugmentConfig()
    fill = (0.25, 0.5, 0.75)
    erase = RandomErasing(1.0, cfg.erasing_scale, cfg.erasing_ratio, fill)
    torch.manual_seed(0)
    size = 64
    y = erase(torch.ones(200, 3, size, size))
    box = y[:, 0] != 1  # (B, H, W)
    for c, value in enumerate(fill):  # every channel filled with its value, nothing else touched
        assert torch.equal(y[:, c] != 1, box)
        assert torch.all(y[:, c][box] == value)
    for mask in box:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        h, w = len(rows), len(cols)
        assert mask.sum() == h * w  # a filled rectangle
        # rounding the sides to whole pixels allows a little slack at the bounds
        assert 0.02 - 0.005 <= h * w / size**2 <= 0.4 + 0.005
        assert 0.3 * 0.8 <= h / w <= (1 / 0.3) * 1.25


def test_erasing_redraws_until_the_box_fits_strictly_as_spt() -> None:
    # SPT utils/random_erasing.py:21-44: a box needs h < H and w < W, else it is drawn again (up to
    # 100 times); on 8x8 images many draws are too tall or wide (area 0.4 x 64 at aspect 3.3 gives
    # h = 9), and clipping them, as kornia does, would give full-height or full-width boxes
    torch.manual_seed(0)
    y = RandomErasing(1.0, (0.02, 0.4), (0.3, 1 / 0.3), (0.0,))(torch.ones(2000, 1, 8, 8))
    box = y[:, 0] == 0
    assert torch.all(box.any(2).sum(1) < 8) and torch.all(box.any(1).sum(1) < 8)
    assert box.flatten(1).any(1).all()  # and every image found one within 100 draws
    assert torch.equal(RandomErasing(0.0, (0.02, 0.4), (0.3, 3.3), (0.0,))(y), y)


@pytest.mark.parametrize("fill", ["spt", "mean"])
def test_erasing_fill_in_normalised_space(fill: str) -> None:
    # SPT main.py:212-214 erases after Normalize with mean=stat[0]: the raw channel mean lands in
    # the normalised image; "mean" fills 0, the data set's mean colour
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    aug = TrainAugment(AugmentConfig(hflip=False, crop_padding=0, autoaugment=None, mean=mean,
                                     std=std, erasing_p=1.0, erasing_fill=fill))
    torch.manual_seed(0)
    y = aug(torch.full((16, 3, 32, 32), 255, dtype=torch.uint8))
    kept = torch.tensor([(1 - m) / s for m, s in zip(mean, std)]).view(1, 3, 1, 1)
    erased = ~torch.isclose(y, kept.expand_as(y))
    assert erased.flatten(1).any(1).all()
    want = torch.tensor(mean if fill == "spt" else (0.0,) * 3).view(1, 3, 1, 1).expand_as(y)
    torch.testing.assert_close(y[erased], want[erased])
    with pytest.raises(ConfigError, match="erasing_fill"):
        AugmentConfig(erasing_fill="grey")


def test_erasing_probability_in_the_pipeline() -> None:
    aug = TrainAugment(AugmentConfig(hflip=False, crop_padding=0, autoaugment=None,
                                     mean=(0.0,) * 3, std=(1.0,) * 3))
    torch.manual_seed(0)
    y = aug(torch.full((800, 3, 8, 8), 255, dtype=torch.uint8))
    erased = (y == 0).flatten(1).any(1).float().mean()
    assert 0.2 < erased < 0.3


def test_normalisation_matches_formula() -> None:
    x = _uint8()
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(EvalTransform(mean, std)(x), expected)
    torch.testing.assert_close(Normalize(mean, std)(x.float() / 255), expected)


def test_autoaugment_runs_after_crop_on_uint8() -> None:
    # SPT main.py:170-216: flip, crop, then AutoAugment on the PIL (uint8) image, then ToTensor
    from lkca.data.autoaugment import AutoAugment

    x = _uint8(b=16)
    aug = TrainAugment(AugmentConfig(autoaugment="svhn", erasing_p=0.0))
    assert isinstance(aug.autoaugment, AutoAugment)
    draws = aug.draw(len(x), (32, 32), np.random.default_rng(0))
    y = aug(x, draws)
    z = aug.crop(aug.flip(x, draws["flip"]), draws["crop"])
    expected = aug.normalize(aug.to_float(aug.autoaugment(z, draws["autoaugment"])))
    assert torch.equal(y, expected)


def test_pipeline_output_shape_and_identity_stages() -> None:
    x = _uint8()
    aug = TrainAugment(AugmentConfig(hflip=False, crop_padding=0, autoaugment=None,
                                     erasing_p=0.0))
    torch.testing.assert_close(aug(x), EvalTransform()(x))
    y = TrainAugment()(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert [n for n, _ in TrainAugment().named_children()] == [
        "flip", "crop", "autoaugment", "to_float", "normalize", "erase"]


def test_digits_sized_images() -> None:
    aug = TrainAugment(AugmentConfig(hflip=False, crop_padding=1, autoaugment=None,
                                     mean=(0.3,) * 3, std=(0.4,) * 3))
    x = _uint8(b=16, h=8)[:, :1].expand(16, 3, 8, 8)  # equal channels, like digits
    assert aug(x).shape == (16, 3, 8, 8)


def test_pipeline_is_deterministic_under_seed_and_resumable() -> None:
    x = _uint8(b=32)
    aug = TrainAugment(AugmentConfig(autoaugment="cifar10"))
    torch.manual_seed(123)
    a = aug(x)
    torch.manual_seed(123)
    b = aug(x)
    torch.manual_seed(124)
    c = aug(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    state = torch.get_rng_state()  # exact resume: restoring the state replays the next batch
    d = aug(x)
    torch.set_rng_state(state)
    assert torch.equal(aug(x), d)


def test_config_validation_and_from_dataset() -> None:
    with pytest.raises(ConfigError, match="known policy"):
        AugmentConfig(autoaugment="cifar")
    with pytest.raises(ConfigError, match="one value per channel"):
        AugmentConfig(mean=(0.5,), std=(0.2, 0.2))
    with pytest.raises(ConfigError, match="erasing_p"):
        AugmentConfig(erasing_p=2.0)

    class Info:  # the fields of lkca.data.base.DatasetInfo the recipe reads
        hflip, crop_padding, autoaugment_policy = False, 1, None
        mean, std = (0.3, 0.3, 0.3), (0.4, 0.4, 0.4)

    cfg = AugmentConfig.from_dataset(Info(), erasing_p=0.0)  # type: ignore[arg-type]
    assert (cfg.hflip, cfg.crop_padding, cfg.autoaugment, cfg.erasing_p) == (False, 1, None, 0.0)
    assert cfg.mean == (0.3, 0.3, 0.3)


def test_recipe_for_every_registered_dataset() -> None:
    from lkca.data.registry import DATASETS

    for info in DATASETS.values():
        aug = TrainAugment(AugmentConfig.from_dataset(info))
        x = _uint8(b=4, h=info.img_size)
        assert aug(x).shape == x.shape
        assert aug.config.autoaugment == info.autoaugment_policy
