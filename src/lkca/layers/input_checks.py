"""The check at every public entry point that takes a tensor (``LKCA.forward``, the forward of
every registered model and segmentor): a ``torch.Tensor`` of a floating-point dtype, or one
:class:`~lkca.errors.InvalidArgumentError` line naming the fix.

Only the Python type and the dtype are read, never a value: no device synchronisation, and
nothing for ``torch.compile`` or ``torch.export`` to trace (both are static there).
"""

from __future__ import annotations

from typing import Any

import torch

from lkca.errors import InvalidArgumentError

# What a caller converts its input with, by what was passed
_IMAGE_FIX = ("scale integer images to floats and normalise them as the model was trained: "
              "(x.float() / 255 - mean) / std, with mean and std from model.pretrained_cfg")
_TOKEN_FIX = ("LKCA mixes float features: embed integer token ids first (e.g. nn.Embedding), "
              "or pass x.float()")


def check_images(x: Any, who: str) -> None:
    """Refuse anything but a floating-point tensor as the images (B, C, H, W) of model ``who``."""
    _check(x, who, "images (B, C, H, W)", _IMAGE_FIX)


def check_features(x: Any, who: str = "LKCA") -> None:
    """Refuse anything but a floating-point tensor as the tokens or feature map of ``who``."""
    _check(x, who, "tokens (B, N, C) or a feature map (B, C, H, W)", _TOKEN_FIX)


def _check(x: Any, who: str, what: str, dtype_fix: str) -> None:
    if not isinstance(x, torch.Tensor):
        kind = type(x).__qualname__
        module = type(x).__module__
        if module == "numpy":
            raise InvalidArgumentError(f"{who}: expected {what} as a torch.Tensor, got a numpy "
                                       f"{kind}; pass torch.from_numpy(x)")
        raise InvalidArgumentError(f"{who}: expected {what} as a torch.Tensor, got "
                                   f"{kind if module == 'builtins' else f'{module}.{kind}'}; pass "
                                   "torch.as_tensor(x, dtype=torch.float32)")
    if not x.is_floating_point():
        raise InvalidArgumentError(f"{who}: expected floating-point {what}, got dtype "
                                   f"{str(x.dtype).removeprefix('torch.')}; {dtype_fix}")


__all__ = ["check_features", "check_images"]
