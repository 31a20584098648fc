"""Initialisation schemes (lkca.layers.weight_init; docs/models.md, "Initialisation")."""

import math

import pytest
import torch

from lkca.errors import ConfigError
from lkca.layers import LKCA
from lkca.layers.weight_init import check_init, init_lkca_kernel_as_conv, xavier_std


def test_lkca_kernel_as_a_convolution_filter():
    torch.manual_seed(0)
    weight = torch.empty(4096, 15, 15)
    init_lkca_kernel_as_conv(weight)
    bound = 1 / 15  # nn.Conv2d's default: kaiming-uniform a=sqrt(5) = U(+-1/sqrt(fan_in))
    assert weight.abs().max().item() <= bound
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    conv = torch.nn.Conv2d(1, 1, 15)  # the same bound as PyTorch's own filter of that size
    assert conv.weight.abs().max().item() <= bound


@pytest.mark.parametrize("grid, expected", [((8, 8), 64 / (3 * 15 * 15)),
                                            ((16, 16), 256 / (3 * 31 * 31))])
def test_global_kernel_output_variance_is_a_convolutions(grid, expected):
    """With the global kernel every token reaches all H*W tokens: Var(out) = H W / (3 kh kw) for
    unit-variance values, about 1/12 whatever the grid."""
    torch.manual_seed(0)
    mixer = LKCA(256, 256, grid, impl="conv")  # 256 independent kernels, one per channel
    init_lkca_kernel_as_conv(mixer.weight)
    x = torch.randn(8, grid[0] * grid[1], 256)
    with torch.no_grad():
        out = mixer(x)
    centre = out[:, (grid[0] // 2) * grid[1] + grid[1] // 2]  # reaches every token
    assert centre.var().item() == pytest.approx(expected, rel=0.15)


def test_check_init_and_xavier_std():
    check_init("spt")
    with pytest.raises(ConfigError, match="init 'kaiming' is not one of spt, trunc_normal"):
        check_init("kaiming")
    assert xavier_std(48, 192) == pytest.approx(math.sqrt(2 / 240))
