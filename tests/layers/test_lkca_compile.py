"""``torch.compile`` (inductor, on CPU) of a small LKCA-only ViT with each implementation: same outputs
and gradients as eager, so the GPU acceptance run is not the first compile of any of them."""

import pytest
import torch

import lkca

pytestmark = pytest.mark.slow  # one inductor compile (forward + backward) per implementation


def _model(impl: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return lkca.create_model("vit_lkca_500k", num_classes=3, img_size=16, depth=1, dim=16,
                             num_heads=2, kernel_heads=None, lkca_projections=False,
                             lkca_impl=impl)


def _step(net, model, x):
    model.zero_grad(set_to_none=True)
    out = net(x)
    out.square().sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("impl", ["conv", "toeplitz", "fft", "auto"])
def test_compiled_matches_eager(impl, fresh_autotune):
    torch._dynamo.reset()
    model = _model(impl)
    x = torch.randn(4, 3, 16, 16)
    ref_out, ref_grads = _step(model, model, x)  # eager first: auto times the shape here
    out, grads = _step(torch.compile(model), model, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    if impl == "auto":  # while compiling: no timing, the choice timed for this shape in eager
        choices = lkca.impl_choices(details=True)
        traced = {k: c for k, c in choices.items() if " B* " in k}
        timed = {k.replace(" B4 ", " B* "): c["impl"] for k, c in choices.items() if " B4 " in k}
        assert traced and {k: c["impl"] for k, c in traced.items()} == timed
        assert {c["source"] for c in traced.values()} == {"cache"}
