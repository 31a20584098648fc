"""XCiT: cross-covariance attention is a (d x d) map per head and its cost is linear in tokens."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from lkca.models.baselines.xcit import XCA, XCiT, XCiTConfig


def _flops(module, x):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(x)
    return counter.get_total_flops()


def test_xca_cost_is_linear_in_the_number_of_tokens():
    torch.manual_seed(0)
    xca = XCA(dim=32, num_heads=4)
    small, large = _flops(xca, torch.randn(1, 64, 32)), _flops(xca, torch.randn(1, 256, 32))
    assert large == 4 * small  # 4x the tokens: 4x the work (attention: ~16x in N^2 terms)


def test_xca_mixes_channels_not_tokens():
    """The same channel mixing applies to every token: permuting the tokens permutes the output."""
    torch.manual_seed(0)
    xca = XCA(dim=16, num_heads=2)
    x = torch.randn(2, 10, 16)
    perm = torch.randperm(10)
    torch.testing.assert_close(xca(x)[:, perm], xca(x[:, perm]))


def test_xcit_runs_on_another_image_size():
    model = XCiT(XCiTConfig(dim=32, depth=2)).eval()  # built for 64x64
    assert model(torch.randn(1, 3, 32, 48)).shape == (1, 200)
