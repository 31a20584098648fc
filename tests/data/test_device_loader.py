"""DeviceLoader: coverage, order from (seed, epoch) only, DDP shards, resume mid-epoch, epochs of
several passes (SPT's RASampler stream)."""

from __future__ import annotations

import pytest
import torch

from lkca.data.device_loader import DeviceLoader
from lkca.errors import UserError

N = 103


def _data(n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    # image i holds the value i (mod 256) everywhere, label i: a batch shows which samples it holds
    images = (torch.arange(n) % 256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    return images, torch.arange(n)


def _labels(loader: DeviceLoader, start: int = 0) -> list[torch.Tensor]:
    return [y for _, y in loader.iter_from(start)]


def test_every_sample_once_per_epoch_and_images_match_labels() -> None:
    images, labels = _data()
    loader = DeviceLoader(images, labels, batch_size=10, shuffle=True, drop_last=False, seed=3)
    assert len(loader) == 11
    seen = []
    for x, y in loader:
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, 4, 4)
        assert torch.equal(x[:, 0, 0, 0].long(), y % 256)
        seen.append(y)
    assert sorted(torch.cat(seen).tolist()) == list(range(N))


def test_drop_last_drops_the_short_batch() -> None:
    images, labels = _data()
    loader = DeviceLoader(images, labels, batch_size=10, shuffle=True, drop_last=True)
    batches = _labels(loader)
    assert len(loader) == len(batches) == 10
    assert all(b.shape[0] == 10 for b in batches)
    assert len(set(torch.cat(batches).tolist())) == 100


def test_order_depends_only_on_seed_and_epoch() -> None:
    images, labels = _data()
    a = DeviceLoader(images, labels, batch_size=8, seed=1)
    b = DeviceLoader(images, labels, batch_size=8, seed=1)
    b.set_epoch(5)
    b.set_epoch(0)  # going back gives the same order: no hidden state
    assert all(torch.equal(x, y) for x, y in zip(_labels(a), _labels(b)))
    a.set_epoch(1)
    assert not torch.equal(torch.cat(_labels(a)), torch.cat(_labels(b)))
    c = DeviceLoader(images, labels, batch_size=8, seed=2)
    assert not torch.equal(torch.cat(_labels(c)), torch.cat(_labels(b)))


def test_no_shuffle_is_dataset_order() -> None:
    images, labels = _data()
    loader = DeviceLoader(images, labels, batch_size=10, shuffle=False, drop_last=False)
    assert torch.equal(torch.cat(_labels(loader)), labels)


@pytest.mark.parametrize("drop_last", [True, False])
def test_union_of_rank_shards_is_the_single_process_batch(drop_last: bool) -> None:
    images, labels = _data()
    single = DeviceLoader(images, labels, batch_size=8, seed=7, drop_last=drop_last)
    ranks = [DeviceLoader(images, labels, batch_size=8, seed=7, drop_last=drop_last,
                          rank=r, world_size=2) for r in range(2)]
    for loader in (single, *ranks):
        loader.set_epoch(3)
    per_rank = [_labels(r) for r in ranks]
    assert len(ranks[0]) == len(single)
    for step, batch in enumerate(_labels(single)):
        assert torch.equal(torch.cat([per_rank[0][step], per_rank[1][step]]), batch)
    if drop_last:
        assert all(b.shape[0] == 4 for b in per_rank[0])


def test_world_size_must_divide_batch() -> None:
    images, labels = _data()
    with pytest.raises(UserError, match="not divisible by the world size 3"):
        DeviceLoader(images, labels, batch_size=8, rank=0, world_size=3)


def test_batch_larger_than_dataset_with_drop_last() -> None:
    images, labels = _data()
    with pytest.raises(UserError, match="larger than an epoch"):
        DeviceLoader(images, labels, batch_size=N + 1, drop_last=True)
    assert len(DeviceLoader(images, labels, batch_size=N + 1, drop_last=False)) == 1


def test_bad_arguments_raise_user_error() -> None:
    images, labels = _data()
    with pytest.raises(UserError, match="one label per image"):
        DeviceLoader(images, labels[:-1], batch_size=4)
    with pytest.raises(UserError, match="rank 2"):
        DeviceLoader(images, labels, batch_size=4, rank=2, world_size=2)


def test_resume_mid_epoch_yields_exactly_the_remaining_batches() -> None:
    images, labels = _data()
    loader = DeviceLoader(images, labels, batch_size=8, seed=11)
    loader.set_epoch(2)
    full = _labels(loader)
    resumed = DeviceLoader(images, labels, batch_size=8, seed=11)
    resumed.set_epoch(2)
    rest = _labels(resumed, start=5)
    assert len(rest) == len(full) - 5
    assert all(torch.equal(a, b) for a, b in zip(full[5:], rest))
    assert _labels(resumed, start=len(resumed)) == []
    with pytest.raises(UserError, match="cannot resume"):
        next(resumed.iter_from(len(resumed) + 1))


def test_three_pass_epoch_is_a_stream_of_permutations_as_spt_draws_it() -> None:
    # SPT utils/sampler.py:14-63 with len_factor 3: int(3N) samples per epoch, batches of B with
    # drop_last, permutations following each other in one stream (across batch boundaries)
    images, labels = _data()
    loader = DeviceLoader(images, labels, batch_size=10, seed=5, passes=3)
    assert len(loader) == 3 * N // 10 == 30
    loader.set_epoch(1)
    stream = torch.cat(_labels(loader))
    assert len(stream) == 300
    for k in range(2):  # two whole permutations, then 94 samples of a third, all distinct
        assert sorted(stream[k * N:(k + 1) * N].tolist()) == list(range(N))
    assert len(set(stream[2 * N:].tolist())) == 300 - 2 * N
    assert not torch.equal(stream[:N], stream[N:2 * N])  # a fresh permutation per pass
    one_pass = DeviceLoader(images, labels, batch_size=10, seed=5, drop_last=False)
    one_pass.set_epoch(1)
    assert torch.equal(stream[:100], torch.cat(_labels(one_pass))[:100])  # pass 1 unchanged
    spanning = DeviceLoader(images, labels, batch_size=10, seed=5, passes=3, drop_last=False)
    spanning.set_epoch(1)
    assert len(spanning) == 31 and len(_labels(spanning)[-1]) == 3 * N - 300
    loader.set_epoch(2)
    assert not torch.equal(torch.cat(_labels(loader)), stream)  # a new stream each epoch


def test_three_pass_resume_and_ddp_slices_rebuild_the_same_batches() -> None:
    images, labels = _data()
    full = DeviceLoader(images, labels, batch_size=8, seed=2, passes=3)
    full.set_epoch(4)
    batches = _labels(full)
    resumed = DeviceLoader(images, labels, batch_size=8, seed=2, passes=3)  # fresh: no cache
    resumed.set_epoch(4)
    step = N // 8 + 1  # past the first pass boundary (step 12 holds samples 96..103)
    assert all(torch.equal(a, b) for a, b in zip(batches[12:], _labels(resumed, start=12)))
    assert all(torch.equal(a, b) for a, b in zip(batches[step:], _labels(resumed, start=step)))
    ranks = [DeviceLoader(images, labels, batch_size=8, seed=2, passes=3, rank=r, world_size=2)
             for r in range(2)]
    for r in ranks:
        r.set_epoch(4)
    for s, (a, b) in enumerate(zip(*(_labels(r) for r in ranks))):
        assert torch.equal(torch.cat([a, b]), batches[s])


def test_passes_must_be_positive() -> None:
    images, labels = _data()
    with pytest.raises(UserError, match="passes"):
        DeviceLoader(images, labels, batch_size=8, passes=0)
