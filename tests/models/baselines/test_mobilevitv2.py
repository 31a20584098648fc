"""MobileViT (the authors' "MobileViTv2" rows): block structure and pooling."""

import pytest
import torch

import lkca
from lkca.models.baselines.mobilevitv2 import InvertedResidual, MobileViT, MobileViTConfig


def test_inverted_residual_keeps_the_input_only_when_the_shape_is_kept():
    assert InvertedResidual(8, 8, 1, 4).residual
    assert not InvertedResidual(8, 8, 2, 4).residual and not InvertedResidual(8, 16, 1, 4).residual


def test_maps_halve_five_times_and_are_averaged():
    """At 64x64 the last map is 2x2 (the authors pool it with AvgPool2d(64 // 32): the mean)."""
    model = lkca.create_model("mobilevitv2_t").eval()
    x = model.stem(torch.randn(1, 3, 64, 64))
    for block in model.mv2:
        x = block(x)
    assert x.shape[-2:] == (2, 2)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)  # the 8x8 digits


def test_channel_lists_must_chain():
    with pytest.raises(ValueError, match="c3 = c2"):
        MobileViT(MobileViTConfig(channels=(10, 20, 36, 40, 54, 54, 72, 72, 94, 94, 384)))
