"""ADE20K training / test transforms: sizes, image-label alignment, cat_max_ratio, distortion."""

import numpy as np
import pytest
import torch

from lkca.seg.transforms import (
    MEAN,
    STD,
    TrainTransform,
    photometric_distortion,
    random_crop,
    random_flip,
    random_resize,
    rescale_size,
    resize_for_test,
)


def coded_pair(h: int, w: int, block: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Label of (block x block) tiles with classes 0..; image red channel = 5 * class."""
    ys, xs = np.meshgrid(np.arange(h) // block, np.arange(w) // block, indexing="ij")
    label = ((ys * 7 + xs * 3) % 40).astype(np.uint8)
    image = np.stack([label * 5, 255 - label * 5, np.full_like(label, 100)], axis=-1).astype(np.uint8)
    return image, label


def denormalize(images: torch.Tensor) -> torch.Tensor:
    return images * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)


def test_keep_ratio_scale_as_mmcv():
    assert rescale_size(512, 683) == (512, 683)
    assert rescale_size(300, 400) == (512, 683)
    assert rescale_size(100, 4000) == (51, 2048)  # the long side limits
    assert resize_for_test(np.zeros((300, 400, 3), np.uint8)).shape == (1, 3, 512, 683)


def test_random_resize_range():
    image, label = torch.zeros(3, 300, 400), torch.zeros(300, 400, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    shorts = [random_resize(image, label, generator=g)[1].shape[0] for _ in range(20)]
    assert min(shorts) >= 255 and max(shorts) <= 1024 and len(set(shorts)) > 10


def test_flip_moves_image_and_label_together():
    image, label = torch.arange(12.0).view(1, 3, 4).expand(3, 3, 4), torch.arange(12).view(3, 4)
    img, lbl = random_flip(image, label, prob=1.0)
    assert torch.equal(img[0], image[0].flip(-1)) and torch.equal(lbl, label.flip(-1))
    img, lbl = random_flip(image, label, prob=0.0)
    assert torch.equal(lbl, label)


def test_cat_max_ratio_redraws_crops_dominated_by_one_class():
    label = torch.zeros(512, 1024, dtype=torch.uint8)
    label[:, :512] = 1  # a 512-wide crop is one class when its offset is 0 or 512
    label[:, 500:520] = 255  # ignored pixels do not count
    image = torch.zeros(3, 512, 1024)

    def ratio(lbl: torch.Tensor) -> float:
        counts = torch.bincount(lbl.flatten().long(), minlength=256)[:255]
        counts = counts[counts > 0]
        return float(counts.max() / counts.sum()) if counts.numel() > 1 else 1.0

    checked = [ratio(random_crop(image, label, (512, 512), 0.75,
                                 generator=torch.Generator().manual_seed(s))[1]) for s in range(20)]
    plain = [ratio(random_crop(image, label, (512, 512), 1.0,
                               generator=torch.Generator().manual_seed(s))[1]) for s in range(20)]
    assert all(r < 0.75 for r in checked)
    assert sum(r >= 0.75 for r in plain) >= 5  # without the check about half the crops fail


@pytest.mark.parametrize("size", [(512, 683), (100, 150)])
def test_train_transform_makes_aligned_512_crops(size):
    pairs = [coded_pair(*size) for _ in range(3)]
    g = torch.Generator().manual_seed(1)
    images, labels = TrainTransform(photometric=False)(pairs, generator=g)
    assert images.shape == (3, 3, 512, 512) and images.dtype == torch.float32
    assert labels.shape == (3, 512, 512) and labels.dtype == torch.int64
    red = denormalize(images)[:, 0]
    valid = labels != 255
    # nearest labels and bilinear pixels agree away from tile borders (and always after a flip)
    agree = (torch.round(red / 5) == labels.float())[valid].float().mean()
    assert agree > 0.9
    if size == (100, 150):  # at most 2.56x -> 256 x 384 at most: padded to 512
        assert (~valid).any() and images.masked_select(~valid[:, None]).abs().max() == 0


def test_photometric_distortion_keeps_range_and_grey():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 16, 16) * 255
    out = photometric_distortion(images, g)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    assert not torch.allclose(out, images)
    grey = torch.rand(8, 1, 16, 16).expand(8, 3, 16, 16) * 255
    out = photometric_distortion(grey, torch.Generator().manual_seed(1))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-3) and torch.allclose(out[:, 1], out[:, 2], atol=1e-3)
    again = photometric_distortion(grey, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
