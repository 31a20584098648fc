"""TrainStream: what a step of the data path costs, and batches independent of the number of
processes, of the chunk size and of where an epoch is resumed."""

from __future__ import annotations

import pytest
import torch

from lkca.analysis.step_counts import count_step
from lkca.data.augment import AugmentConfig, TrainAugment
from lkca.data.device_loader import DeviceLoader
from lkca.data.draws import step_rng
from lkca.data.mix import MixConfig, draw_mix, mix_batch
from lkca.data.train_stream import TrainStream
from lkca.errors import UserError

# the CIFAR-10 recipe's data path (flip, pad-4 crop, AutoAugment cifar10, erasing 0.25,
# Mixup/CutMix) at batch 128, averaged over the 42 steps of one chunk: no host wait and at most
# this many aten ops per step (16 when written; the model's own fused-AdamW step of
# vit_lkca_500k at batch 128 is about 345)
MAX_ATEN_OPS_PER_STEP = 24


def _data(n: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return images, torch.randint(0, 10, (n,), generator=g)


def _stream(images, labels, batch, world=1, rank=0, **kwargs) -> TrainStream:
    loader = DeviceLoader(images, labels, batch, seed=5)
    return TrainStream(loader, TrainAugment(AugmentConfig()), kwargs.pop("mix", MixConfig()),
                       seed=5, rank=rank, world_size=world, **kwargs)


def test_a_cifar10_recipe_step_makes_no_host_wait_and_few_aten_ops() -> None:
    images, labels = _data(42 * 128)
    stream = _stream(images, labels, 128)
    assert stream.chunk_steps == 42
    with count_step() as counts:
        batches = list(stream.iter_from(0))
    assert len(batches) == 42 and batches[0].images.shape == (128, 3, 32, 32)
    assert {b.mode for b in batches} == {"none", "mixup", "cutmix"}  # the recipe is all there
    assert counts.host_waits == 0, counts.host_wait_names
    assert counts.aten_ops / len(batches) <= MAX_ATEN_OPS_PER_STEP, counts.aten_op_names


def _global(images, labels, world, epoch=1, start=0, **kwargs) -> list[tuple]:
    """Each step's batch put together from the ranks: (images, targets_a, targets_b, lam, mode)."""
    ranks = []
    for rank in range(world):
        stream = _stream(images, labels, 24, world, rank, **kwargs)
        stream.set_epoch(epoch)
        ranks.append(list(stream.iter_from(start)))
    return [(torch.cat([r[s].images for r in ranks]), torch.cat([r[s].targets_a for r in ranks]),
             torch.cat([r[s].targets_b for r in ranks]), ranks[0][s].lam, ranks[0][s].mode)
            for s in range(len(ranks[0]))]


def _assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2])
        assert x[3:] == y[3:]


def test_the_global_batch_is_bit_identical_for_1_2_and_3_processes() -> None:
    images, labels = _data(240, size=16)
    one = _global(images, labels, 1)
    assert len(one) == 10 and {b[4] for b in one} == {"none", "mixup", "cutmix"}
    for world in (2, 3):
        _assert_same(one, _global(images, labels, world))


def test_chunk_size_and_resume_change_nothing() -> None:
    images, labels = _data(120, size=16)
    whole = _global(images, labels, 1)
    _assert_same(whole, _global(images, labels, 1, max_chunk_values=1))  # one step per chunk
    _assert_same(whole[3:], _global(images, labels, 2, start=3))  # resumed mid-epoch
    assert not torch.equal(whole[0][0], _global(images, labels, 1, epoch=2)[0][0])


def test_a_step_is_the_recipe_on_its_global_batch() -> None:
    # the chunked path equals augmenting the step's global batch and mixing it, with the
    # choices of step_rng(seed, epoch, step)
    images, labels = _data(120, size=16)
    stream = _stream(images, labels, 24)
    stream.set_epoch(1)
    batches = list(stream.iter_from(0))
    for step in range(len(batches)):
        idx = stream.loader.global_indices(step)
        rng = step_rng(5, 1, step)
        x = stream.augment(images[idx], stream.augment.draw(24, (16, 16), rng))
        want = mix_batch(x, labels[idx], draw=draw_mix(24, (16, 16), MixConfig(), rng))
        got = batches[step]
        assert (got.lam, got.mode) == (want.lam, want.mode)
        assert torch.equal(got.targets_a, want.targets_a)
        assert torch.equal(got.targets_b, want.targets_b)
        assert torch.equal(got.images, want.images)


def test_refuses_a_batch_that_does_not_split_and_a_sharded_loader() -> None:
    images, labels = _data(48, size=8)
    with pytest.raises(UserError, match="does not split over 5 processes"):
        _stream(images, labels, 24, world=5)
    loader = DeviceLoader(images, labels, 24, rank=1, world_size=2)
    with pytest.raises(UserError, match="global batches"):
        TrainStream(loader, TrainAugment(), MixConfig(), seed=0)
    with pytest.raises(UserError, match="cannot resume at step 9"):
        next(_stream(images, labels, 24).iter_from(9))
