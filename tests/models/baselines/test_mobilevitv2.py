"""MobileViTv2: the ImageNet network's published sizes, separable attention."""

import pytest
import torch

import lkca
from lkca.models.baselines.mobilevitv2 import (
    MobileViTv2,
    MobileViTv2Config,
    SeparableSelfAttention,
    make_divisible,
)


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("width, millions", [(0.5, 1.37), (1.0, 4.90), (1.5, 10.59)])
def test_imagenet_widths_have_the_published_parameter_counts(width, millions):
    model = MobileViTv2(MobileViTv2Config(width=width, num_classes=1000))
    assert round(_params(model) / 1e6, 2) == millions


def test_make_divisible():
    assert [make_divisible(v) for v in (32, 33, 36.9, 60.16)] == [32, 32, 40, 64]
    assert make_divisible(64 * 0.47, 16) == 32


def test_separable_attention_mixes_patches_linearly_in_their_number():
    attn = SeparableSelfAttention(8)
    x = torch.randn(2, 8, 4, 5)  # (B, d, pixels per patch, patches)
    out = attn(x)
    assert out.shape == x.shape
    y = x.clone()
    y[..., 0] += 1.0  # one patch changes the shared context, hence every patch's output
    assert not torch.allclose(attn(y)[..., 1:], out[..., 1:])


def test_small_maps_are_resized_to_whole_patches():
    model = lkca.create_model("mobilevitv2_t").eval()
    for size in (8, 40):
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)
