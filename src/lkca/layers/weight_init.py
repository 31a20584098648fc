"""Weight initialisation schemes of the ViT family: SPT's (the paper's code base) and timm's.

``init="spt"`` follows the training code the paper quotes (SPT, aanna0701/SPT_LSA_ViT,
``models/vit.py`` at commit 54bd796): ``init_weights`` (lines 14-21) gives every ``nn.Linear`` /
``nn.Conv2d`` weight ``xavier_normal_`` and a zero bias, every LayerNorm weight 1 and bias 0, and
``ViT.__init__`` draws the position embedding (line 143) and the class token (line 145) from
``torch.randn`` (std 1), untouched by ``self.apply(init_weights)`` (line 155). The LKCA authors'
code (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet) uses the same ``init_weights``
(``models/largevit_cnn.py`` lines 15-22, applied at line 146) and creates the LKCA kernel
``dynamicqk`` as ``torch.zeros`` (line 76), a bare parameter ``init_weights`` never visits: so
``init="spt"`` starts every LKCA kernel at zero (``kernel_init="conv"`` is the paper text's
reading instead, "akin to the initialization of convolutional kernels", section 3.2.1).

``init="trunc_normal"`` is lkca 0.1.0's (timm's ViT): Linear weights truncated normal with std
0.02 and zero biases, LayerNorm 1/0, position table truncated normal 0.02, class token 0, the
patch convolution and the LKCA kernel as their own modules initialise them.

What each scheme does to the LKCA kernel, and why: docs/models.md, "Initialisation".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lkca.errors import ConfigError
from lkca.layers.lkca import LKCA
from lkca.layers.patch_embed import PatchEmbed
from lkca.layers.pos_embed import PosEmbed

INIT_SCHEMES = ("spt", "trunc_normal")
KERNEL_INITS = ("zeros", "conv")


def check_init(scheme: str) -> None:
    """Raise a one-line ConfigError unless ``scheme`` is one of :data:`INIT_SCHEMES`."""
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"init {scheme!r} is not one of {', '.join(INIT_SCHEMES)}; use 'spt' "
                          "(the paper's code base) or 'trunc_normal' (timm, lkca 0.1.0)")


def init_weights(m: nn.Module) -> None:
    """timm's ViT initialisation of one module (``model.apply(init_weights)``): Linear weights
    truncated normal std 0.02, zero biases; LayerNorm weight 1, bias 0."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def xavier_std(fan_in: int, fan_out: int) -> float:
    """The standard deviation ``xavier_normal_`` draws with: sqrt(2 / (fan_in + fan_out))."""
    return math.sqrt(2.0 / (fan_in + fan_out))


def init_lkca_kernel_as_conv(weight: torch.Tensor) -> None:
    """The LKCA kernel (groups, kh, kw) initialised as PyTorch initialises a depthwise
    convolution filter of that size (``nn.Conv2d.reset_parameters``: kaiming-uniform with
    a = sqrt(5)), i.e. uniform in +-1 / sqrt(kh * kw): each output mixes kh * kw inputs of one
    channel, so fan_in = kh * kw."""
    bound = 1.0 / math.sqrt(weight.shape[-2] * weight.shape[-1])
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def check_kernel_init(scheme: str) -> None:
    """Raise a one-line ConfigError unless ``scheme`` is one of :data:`KERNEL_INITS`."""
    if scheme not in KERNEL_INITS:
        raise ConfigError(f"kernel_init {scheme!r} is not one of {', '.join(KERNEL_INITS)}; use "
                          "'zeros' (the authors' code) or 'conv' (a convolution filter's)")


def init_spt(model: nn.Module, kernel_init: str = "zeros") -> None:
    """SPT's initialisation of a whole model, in place (see the module docstring).

    Departures, each because our module differs in form, not in function: the patch embedding is
    a ``Conv2d`` with kernel = stride = patch, the same map as SPT's ``Linear(C * p * p, dim)``
    over flattened patches; it is initialised as that Linear (fans C * p * p and dim), not with
    the Conv2d fans (C * p * p and dim * p * p) that would make it 4-8x smaller (the authors'
    patch embedding is that Linear, ``models/largevit_cnn.py`` lines 128-131). Every LKCA kernel
    starts at zero as the authors' ``dynamicqk`` (``kernel_init="zeros"``), or as a convolution
    filter of its size (``"conv"``, :func:`init_lkca_kernel_as_conv`).
    """
    patch_convs = {id(m.proj) for m in model.modules() if isinstance(m, PatchEmbed)}
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and id(m) in patch_convs:
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            nn.init.normal_(m.weight, std=xavier_std(fan_in, m.out_channels))
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(m.weight)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, LKCA):
            if kernel_init == "zeros":
                nn.init.zeros_(m.weight)
            else:
                init_lkca_kernel_as_conv(m.weight)
        elif isinstance(m, PosEmbed):
            nn.init.normal_(m.pos, std=1.0)
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            nn.init.zeros_(m.bias)
