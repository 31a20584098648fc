"""One LKCA kernel shared by all channels (the authors' ``dynamicqk``): every implementation
gives the same output and gradients, and the attention view multiplies every image's values by
one N x N matrix, built once."""

from __future__ import annotations

import pytest
import torch

from lkca.layers import LKCA
from lkca.layers.lkca import IMPLS


def _run(impl: str, kernel: torch.Tensor, x: torch.Tensor):
    torch.manual_seed(0)
    m = LKCA(24, 1, (8, 8), impl=impl, projections=True)
    with torch.no_grad():
        m.weight.copy_(kernel)
    xi = x.clone().requires_grad_(True)
    out = m(xi)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    return out.detach(), xi.grad, m.weight.grad, m.v_proj.weight.grad


def test_every_implementation_agrees_forward_and_backward():
    torch.manual_seed(1)
    kernel = torch.randn(1, 15, 15)
    x = torch.randn(3, 64, 24)
    ref = _run("conv", kernel, x)
    for impl in IMPLS:
        for a, b in zip(_run(impl, kernel, x), ref):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_attention_view_is_one_matrix_times_the_values(monkeypatch):
    import lkca.layers.lkca as lkca_layer

    built = []
    toeplitz_matrix = lkca_layer.toeplitz_matrix

    def recording(weight, grid_size):
        built.append(toeplitz_matrix(weight, grid_size))
        return built[-1]

    monkeypatch.setattr(lkca_layer, "toeplitz_matrix", recording)
    m = LKCA(24, 1, (8, 8), impl="toeplitz")
    x = torch.randn(5, 64, 24)
    out = m(x)
    assert len(built) == 1 and built[0].shape == (1, 64, 64)
    # the (N x N) matrix times each image's (N x C) values: one (N x N) @ (N x 5 * 24) product
    folded = built[0][0] @ x.transpose(0, 1).reshape(64, 5 * 24)
    torch.testing.assert_close(out, folded.reshape(64, 5, 24).transpose(0, 1))


@pytest.mark.parametrize("impl", ["conv", "toeplitz", "fft"])
def test_a_zero_kernel_gives_the_output_bias(impl):
    m = LKCA(24, 1, (8, 8), impl=impl, projections=True)
    with torch.no_grad():
        m.weight.zero_()
    out = m(torch.randn(2, 64, 24))
    torch.testing.assert_close(out, m.proj.bias.expand_as(out).detach())
