"""The random choices of the training augmentation, drawn on the host with numpy.

Every random choice of the augmentation and of the mixing (a flip, a crop offset, a sub-policy, an
erasing box, lam, a permutation) is a small number drawn by numpy on the host, never by the
device: reading a device value back to decide what to run next (how many images drew an
operation, whether to mix) would make the host wait for the device, and on a GPU a training
step of a small model is bound by such waits and by kernel launches. With the choices on the
host, each operation runs once on the images that drew it, as a few large kernels, and the
device only receives the parameters (:func:`on_device`, without waiting).

Where the choices come from:

- a training run keys them by the sample's place in the epoch stream: global batch ``step`` of
  epoch ``epoch`` draws all its choices from :func:`step_rng` ``(seed, epoch, step)``, for the
  whole global batch, so they do not depend on the number of processes, on how many steps are
  augmented together, or on where a run was resumed (:mod:`lkca.data.train_stream`);
- a stage called on its own (``TrainAugment()(x)``, ``mix_batch(x, y)``) draws them from
  :func:`rng_from_torch`, a generator seeded from torch's global CPU generator, so
  ``torch.manual_seed`` makes it deterministic and ``torch.get_rng_state()`` replays it.

numpy's ``Generator`` streams are stable within a numpy version (NEP 19), which is what exact
resume needs: the same installation replays the same choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

_STREAM_TAG = 0x6C6B6361  # "lkca": keeps these streams apart from any other keyed on the seed
_MASK64 = (1 << 64) - 1

Draws = dict[str, Any]  # a stage's choices: arrays (first axis: the image), or nested Draws


def step_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The generator of global batch ``step`` of epoch ``epoch`` of a run seeded ``seed``."""
    key = [seed & _MASK64, epoch & _MASK64, step & _MASK64, _STREAM_TAG]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))


def rng_from_torch() -> np.random.Generator:
    """A generator seeded from torch's global CPU generator (one 62-bit draw from it)."""
    return np.random.default_rng(int(torch.randint(1 << 62, (1,))))


def on_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array as a tensor on ``device``; to a GPU through pinned memory, without waiting."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cpu":
        return tensor
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def select(draws: Draws, index: np.ndarray) -> Draws:
    """The choices of the images ``index`` (every array indexed along its first axis)."""
    return {k: select(v, index) if isinstance(v, dict) else v[index] for k, v in draws.items()}


def concat(parts: Sequence[Draws]) -> Draws:
    """The choices of several groups of images, one after the other."""
    first = parts[0]
    return {k: concat([p[k] for p in parts]) if isinstance(first[k], dict)
            else np.concatenate([p[k] for p in parts]) for k in first}


class RandomStage(nn.Module):
    """An augmentation stage whose randomness is a set of per-image choices drawn on the host.

    ``draw(n, size, rng)`` makes the choices for ``n`` images of ``size = (H, W)``;
    ``forward(x, draws)`` applies them (``draws`` omitted: drawn from :func:`rng_from_torch`).
    Image ``i`` of ``x`` depends only on ``x[i]`` and the choices of row ``i``, so any subset of
    a batch, augmented with its rows of the choices, gives those images bit for bit.
    """

    def draw(self, n: int, size: tuple[int, int], rng: np.random.Generator) -> Draws:
        raise NotImplementedError

    def transform(self, x: torch.Tensor, draws: Draws) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, draws: Draws | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")
        if draws is None:
            draws = self.draw(x.shape[0], (x.shape[-2], x.shape[-1]), rng_from_torch())
        return self.transform(x, draws)
