"""Batches drawn by index from a data set that lives on the training device (docs/design.md, "Why").

The whole split is one uint8 tensor on the device, so a batch is ``images[idx]``: no workers, no
per-sample Python, no host-to-device copy per step (the airbench approach).

An epoch reads ``passes`` x N samples from a stream of permutations of the data set, as SPT's
``RASampler`` does (aanna0701/SPT_LSA_ViT utils/sampler.py:14-63, ``len_factor=3`` in main.py:98
and :221-223; docs/recipe.md): when a permutation is used up the next one continues the stream,
also inside a batch, and a new epoch starts a new stream. Permutation ``k`` of epoch ``e`` is drawn
from a private ``torch.Generator`` seeded from ``(seed, e, k)`` alone, so any batch can be rebuilt
without replaying the ones before it (exact resume mid-epoch), and the order does not depend on
the number of processes, on the device, or on where a run was resumed. Under DDP every rank takes
its contiguous slice of each global batch; the global batches are the same whatever the world
size.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from lkca.errors import UserError

_MASK64 = (1 << 64) - 1


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed from ``(seed, epoch)`` (splitmix64 mixing, stable across Python
    versions, unlike ``hash``), so nearby seeds and epochs give unrelated permutations."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


class DeviceLoader:
    """Iterate over ``(images, labels)`` batches of a device-resident data set.

    Args:
        images: (N, C, H, W) tensor, normally uint8, already on the training device.
        labels: (N,) int64 labels (moved to ``images``' device).
        batch_size: the GLOBAL batch size (all ranks together).
        shuffle: a new permutation every epoch; otherwise data set order.
        drop_last: drop the final incomplete batch (the training recipe does).
        seed: with the epoch, the only input to the order.
        passes: samples per epoch as a multiple of the data set size: an epoch has
            ``int(passes * N)`` samples (SPT's ``len_factor``; its paper recipe uses 3), so
            ``int(passes * N) // batch_size`` steps with ``drop_last``.
        rank, world_size: this process's place under DDP; each rank yields
            ``batch_size // world_size`` samples per step (the last batch with ``drop_last=False``
            is split as evenly as possible, so a rank may get fewer or none).

    Call :meth:`set_epoch` before each epoch; iterate, or use :meth:`iter_from` to resume an
    epoch at a given step without drawing the batches before it.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = True, drop_last: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, passes: float = 1.0) -> None:
        if images.ndim != 4:
            raise UserError(f"DeviceLoader needs images of shape (N, C, H, W), got {tuple(images.shape)}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise UserError(
                f"DeviceLoader needs one label per image: {images.shape[0]} images but labels "
                f"of shape {tuple(labels.shape)}"
            )
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is not in [0, world_size={world_size})")
        if batch_size % world_size:
            raise UserError(
                f"the global batch size {batch_size} is not divisible by the world size "
                f"{world_size}; use a batch size that is a multiple of {world_size}"
            )
        if not passes > 0:
            raise UserError(f"passes (epoch_passes) must be > 0, got {passes}")
        n = int(images.shape[0] * passes)
        if drop_last and batch_size > n:
            raise UserError(
                f"batch_size {batch_size} is larger than an epoch ({n} samples), so with "
                f"drop_last there would be no batch; use a batch size <= {n}"
            )
        self.images = images
        self.labels = labels.to(images.device)
        self.batch_size = batch_size
        self.local_batch_size = batch_size // world_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.passes = passes
        self.epoch = 0
        self._perms: dict[tuple[int, int], torch.Tensor] = {}  # (epoch, k) -> permutation k

    @property
    def num_samples(self) -> int:
        """Size of the whole data set (all ranks)."""
        return self.images.shape[0]

    @property
    def samples_per_epoch(self) -> int:
        """Samples an epoch reads (all ranks): ``int(passes * N)``, as SPT's ``len_images``."""
        return int(self.num_samples * self.passes)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration follows."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Steps (global batches) per epoch."""
        n, b = self.samples_per_epoch, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, k: int = 0) -> torch.Tensor:
        """Permutation ``k`` (N,) of the current epoch's stream, on the data's device.

        Permutation 0 is seeded from ``(seed, epoch)`` exactly as before epochs of several passes
        existed, so one-pass runs keep their order; permutation ``k > 0`` from ``(seed, epoch, k)``.
        """
        n = self.num_samples
        if not self.shuffle:
            return torch.arange(n, device=self.images.device)
        key = (self.epoch, k)
        if key not in self._perms:
            if len(self._perms) >= 4:  # a batch spans at most a few permutations: keep a handful
                self._perms.pop(next(iter(self._perms)))
            seed = epoch_seed(self.seed, self.epoch)
            g = torch.Generator()  # CPU: the same permutation on every device
            g.manual_seed(seed if k == 0 else epoch_seed(seed, k))
            self._perms[key] = torch.randperm(n, generator=g).to(self.images.device)
        return self._perms[key]

    def global_indices(self, step: int, stop_step: int | None = None) -> torch.Tensor:
        """Indices of global batch ``step`` of the current epoch (all ranks), or of the batches
        ``step .. stop_step - 1`` one after the other: stream positions ``[step * B, stop_step * B)``,
        which may run from one permutation into the next."""
        n = self.num_samples
        start = step * self.batch_size
        stop = min((step + 1 if stop_step is None else stop_step) * self.batch_size,
                   self.samples_per_epoch)
        pieces = [self.order(k)[max(start - k * n, 0):stop - k * n]
                  for k in range(start // n, (stop - 1) // n + 1)]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def _local(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.shape[0] == self.batch_size:
            lb = self.local_batch_size
            return idx[self.rank * lb:(self.rank + 1) * lb]
        return torch.tensor_split(idx, self.world_size)[self.rank]  # the short last batch

    def iter_from(self, step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield this rank's ``(images, labels)`` for steps ``step .. len(self) - 1``."""
        if not 0 <= step <= len(self):
            raise UserError(f"cannot resume at step {step}: an epoch has {len(self)} steps")
        for s in range(step, len(self)):
            idx = self._local(self.global_indices(s))
            yield self.images[idx], self.labels[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)
