"""One LKCA kernel shared by all channels (the authors' ``dynamicqk``): every implementation
gives the same output and gradients, and the attention view is one (N x N) @ (N x B*C) product."""

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


def test_the_attention_view_is_one_matrix_product(monkeypatch):
    shapes = []
    bmm = torch.bmm

    def recording(a, b, *args, **kwargs):
        shapes.append((tuple(a.shape), tuple(b.shape)))
        return bmm(a, b, *args, **kwargs)

    monkeypatch.setattr(torch, "bmm", recording)
    m = LKCA(24, 1, (8, 8), impl="toeplitz")
    m(torch.randn(5, 64, 24))
    assert shapes == [((1, 64, 64), (1, 64, 5 * 24))]


@pytest.mark.parametrize("impl", ["conv", "toeplitz", "fft"])
def test_a_zero_kernel_gives_the_output_bias(impl):
    m = LKCA(24, 1, (8, 8), impl=impl, projections=True)
    with torch.no_grad():
        m.weight.zero_()
    out = m(torch.randn(2, 64, 24))
    torch.testing.assert_close(out, m.proj.bias.expand_as(out).detach())
