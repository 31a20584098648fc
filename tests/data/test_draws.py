"""Host-drawn choices: keyed generators, the torch-seeded generator, selecting and joining draws."""

from __future__ import annotations

import numpy as np
import torch

from lkca.data.augment import AugmentConfig, TrainAugment
from lkca.data.draws import concat, on_device, rng_from_torch, select, step_rng


def test_step_rng_depends_on_the_key_alone() -> None:
    a = step_rng(0, 1, 2).random(4)
    assert np.array_equal(a, step_rng(0, 1, 2).random(4))
    for key in ((1, 1, 2), (0, 2, 2), (0, 1, 3), (0, 2, 1)):
        assert not np.array_equal(a, step_rng(*key).random(4)), key


def test_rng_from_torch_follows_torch_manual_seed() -> None:
    torch.manual_seed(3)
    a = rng_from_torch().random(3)
    torch.manual_seed(3)
    assert np.array_equal(a, rng_from_torch().random(3))
    assert not np.array_equal(a, rng_from_torch().random(3))


def test_a_subset_of_a_batch_augments_to_the_same_images() -> None:
    # what lets a process augment only the images it needs: image i depends on x[i] and row i
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 16, 16), generator=g, dtype=torch.uint8)
    aug = TrainAugment(AugmentConfig())
    draws = aug.draw(64, (16, 16), np.random.default_rng(0))
    whole = aug(x, draws)
    rows = np.array([3, 5, 6, 40, 63])
    assert torch.equal(aug(x[rows], select(draws, rows)), whole[rows])
    parts = concat([select(draws, rows[:2]), select(draws, rows[2:])])
    assert torch.equal(aug(x[rows], parts), whole[rows])


def test_on_device_keeps_the_values() -> None:
    a = np.arange(6).reshape(2, 3)[:, ::2]  # not contiguous
    t = on_device(a, torch.device("cpu"))
    assert t.tolist() == a.tolist() and t.dtype == torch.int64
