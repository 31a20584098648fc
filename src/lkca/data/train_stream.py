"""The training batches of one process: drawn, augmented and mixed a chunk of steps at a time.

Per global batch ``step`` of an epoch (docs/recipe.md): the :class:`DeviceLoader`'s images of
that step, every choice of :class:`TrainAugment` and of the Mixup/CutMix (:func:`draw_mix`)
drawn for the whole GLOBAL batch from :func:`lkca.data.draws.step_rng` ``(seed, epoch, step)``.
Under DDP (``world_size`` processes) rank ``r`` trains on images ``[r * b, (r + 1) * b)`` of it
(``b = batch / world_size``), mixed with their partners anywhere in the global batch. So the
global batch, put together from the ranks, is the same bit for bit whatever the number of
processes, and any step can be rebuilt without the ones before it: a run resumed mid-epoch
continues exactly.

Each rank augments only the images it needs: its own and their partners (at most ``2 b`` per
step). The work of ``chunk_steps`` steps is done together, each augmentation operation once on
all the images of the chunk that drew it, and the mixing once for the chunk, so a step costs a
few device operations on average and none of them waits: the choices are made on the host.
A chunk holds at most ``max_chunk_values`` (2^25) image values (``chunk_steps * 2 b * C * H * W``:
about 34 MB as uint8, 134 MB as float32; 42 steps of 128 CIFAR-10 images, 10 of Tiny-ImageNet's
64 x 64), and its results do not depend on its size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lkca.data.augment import TrainAugment
from lkca.data.device_loader import DeviceLoader
from lkca.data.draws import concat, on_device, select, step_rng
from lkca.data.mix import MixConfig, MixedBatch, draw_mix, mix_rows, mix_weights
from lkca.errors import UserError

MAX_CHUNK_VALUES = 1 << 25


class TrainStream:
    """This rank's :class:`MixedBatch` for each step of an epoch.

    Args:
        loader: the GLOBAL batches (a :class:`DeviceLoader` of rank 0 of 1, ``drop_last``).
        augment, mix: the recipe's augmentation and mixing.
        seed: with the epoch and the step, the only input to the choices.
        rank, world_size: this process's place under DDP.
        max_chunk_values: the bound on a chunk's image values (module docstring).

    Call :meth:`set_epoch` before each epoch, then iterate :meth:`iter_from`.
    """

    def __init__(self, loader: DeviceLoader, augment: TrainAugment, mix: MixConfig, seed: int,
                 rank: int = 0, world_size: int = 1,
                 max_chunk_values: int = MAX_CHUNK_VALUES) -> None:
        if loader.world_size != 1 or not loader.drop_last:
            raise UserError("TrainStream needs the loader of the global batches: "
                            "DeviceLoader(..., drop_last=True) with rank 0 of 1")
        if world_size < 1 or not 0 <= rank < world_size or loader.batch_size % world_size:
            raise UserError(f"the global batch size {loader.batch_size} does not split over "
                            f"{world_size} processes (rank {rank}); use a multiple of {world_size}")
        self.loader, self.augment, self.mix, self.seed = loader, augment, mix, seed
        self.rank, self.world_size = rank, world_size
        self.local_batch_size = loader.batch_size // world_size
        values = 2 * self.local_batch_size * int(np.prod(loader.images.shape[1:]))
        self.chunk_steps = max(1, max_chunk_values // values)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = epoch
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def iter_from(self, step: int, stop: int | None = None) -> Iterator[MixedBatch]:
        """This rank's batches of steps ``step .. stop - 1`` (``stop``: the epoch's end)."""
        stop = len(self) if stop is None else min(stop, len(self))
        if not 0 <= step <= len(self):
            raise UserError(f"cannot resume at step {step}: an epoch has {len(self)} steps")
        for start in range(step, stop, self.chunk_steps):
            yield from self._chunk(start, min(start + self.chunk_steps, stop))

    def _chunk(self, start: int, stop: int) -> Iterator[MixedBatch]:
        """Steps ``start .. stop - 1``: every choice on the host, then the device work once."""
        B, b = self.loader.batch_size, self.local_batch_size
        H, W = self.loader.images.shape[-2:]
        own = np.arange(self.rank * b, (self.rank + 1) * b)  # this rank's places in a batch
        needed, draws, first, second, weights, boxes, steps = [], [], [], [], [], [], []
        rows = 0  # images of the chunk so far
        for k, step in enumerate(range(start, stop)):
            rng = step_rng(self.seed, self.epoch, step)
            augment_draws = self.augment.draw(B, (H, W), rng)
            mix = draw_mix(B, (H, W), self.mix, rng)
            partners = mix.perm[own]
            need = np.union1d(own, partners)  # sorted, each image once
            needed.append(need + k * B)
            draws.append(select(augment_draws, need))
            first.append(np.searchsorted(need, own) + rows)
            second.append(np.searchsorted(need, partners) + rows)
            weight, box = mix_weights(mix, b)
            weights.append(weight)
            boxes.append(box)
            steps.append((mix.lam, mix.mode))
            rows += len(need)
        device = self.loader.images.device
        index = self.loader.global_indices(start, stop)[on_device(np.concatenate(needed), device)]
        images = self.augment(self.loader.images[index], concat(draws))
        labels = self.loader.labels[index]
        a, p = on_device(np.concatenate(first), device), on_device(np.concatenate(second), device)
        mixed = mix_rows(images[a], images[p], np.concatenate(weights), np.concatenate(boxes))
        for x, ya, yb, (lam, mode) in zip(mixed.split(b), labels[a].split(b), labels[p].split(b),
                                          steps):
            yield MixedBatch(x, ya, yb, lam, mode)
