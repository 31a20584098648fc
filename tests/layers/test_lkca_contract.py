"""LKCA's public contract beyond the math: a CNN's (B, C, H, W) feature map in and out, one output
dtype under autocast whichever impl runs, and every argument mistake an ``lkca.UserError``."""

import pytest
import torch

import lkca
from lkca import LKCA

IMPLS = ["conv", "toeplitz", "fft", "auto"]


def _module(impl: str, projections: bool = False, grid=(6, 5)) -> LKCA:
    torch.manual_seed(0)
    m = LKCA(16, 4, grid, impl=impl, projections=projections)
    with torch.no_grad():
        m.weight.normal_(std=0.2)
    return m


@pytest.mark.parametrize("projections", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_feature_map_equals_the_flattened_tokens(impl, projections):
    """(B, C, H, W) in, (B, C, H, W) out, equal to the (B, N, C) path to 1e-6, gradients too; the
    grid comes from the map (here one other than the construction grid)."""
    m = _module(impl, projections)
    x = torch.randn(2, 16, 7, 4, requires_grad=True)
    out = m(x)
    assert out.shape == x.shape
    tokens = x.detach().flatten(2).transpose(1, 2).requires_grad_(True)
    ref = m(tokens, grid_size=(7, 4))
    torch.testing.assert_close(out, ref.transpose(1, 2).reshape(2, 16, 7, 4), rtol=0, atol=1e-6)
    g = torch.randn(out.shape)
    (out * g).sum().backward()
    (ref * g.flatten(2).transpose(1, 2)).sum().backward()
    torch.testing.assert_close(x.grad.flatten(2).transpose(1, 2), tokens.grad, rtol=0, atol=1e-6)


@pytest.mark.slow  # one inductor compile per implementation
@pytest.mark.parametrize("impl", IMPLS)
def test_feature_map_under_torch_compile(impl, fresh_autotune):
    m = _module(impl)
    x = torch.randn(2, 16, 6, 5)
    ref = m(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(x.shape)  # eager, tokens
    torch._dynamo.reset()
    with torch.no_grad():
        got = torch.compile(m)(x)
    torch.testing.assert_close(got, ref.detach(), rtol=0, atol=1e-6)


def test_feature_map_mistakes_are_user_errors():
    m = LKCA(16, 4, (6, 5))
    with pytest.raises(lkca.UserError, match=r"expected a feature map \(B, 16, H, W\).*permute"):
        m(torch.randn(1, 6, 5, 16))  # channels last
    with pytest.raises(lkca.UserError, match="leave grid_size out"):
        m(torch.randn(1, 16, 6, 5), grid_size=(5, 6))
    with pytest.raises(lkca.UserError, match=r"tokens \(B, N, 16\) or a feature map"):
        m(torch.randn(16, 30))


@pytest.mark.parametrize("projections", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_one_output_dtype_under_autocast(impl, projections):
    """Under bf16 autocast every impl returns bf16 (fft computes in fp32 and rounds at the end);
    outside autocast the input's dtype."""
    m = _module(impl, projections)
    x = torch.randn(2, 30, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert m(x).dtype == torch.bfloat16
        assert m(x.transpose(1, 2).reshape(2, 16, 6, 5)).dtype == torch.bfloat16
        if not projections:  # float64 is not autocast's to lower
            assert m(x.double()).dtype == torch.float64
    assert m(x).dtype == torch.float32
    if not projections:
        assert m(x.double()).dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel_size=-3), r"odd and positive, got \(-3, -3\); use an odd size such as \(3, 3\)"),
        (dict(kernel_size=4), r"such as \(5, 5\)"),
        (dict(kernel_size=0), r"such as \(1, 1\)"),
        (dict(kernel_size=7.0), r"kernel_size must be an int or a pair of ints \(H, W\), got 7.0; use 7"),
        (dict(kernel_size="7"), "kernel_size must be an int or a pair"),
        (dict(kernel_size=(7,)), "kernel_size must be an int or a pair"),
        (dict(kernel_size=17), "larger than 2 \\* grid - 1"),
        (dict(grid_size=(8, 8, 8)), "grid_size must be an int or a pair"),
        (dict(grid_size=0), "grid_size must be positive"),
        (dict(num_heads=3), "multiple of num_heads"),
        (dict(dim=16.0), "multiple of num_heads"),
        (dict(impl="cuda"), "unknown impl"),
        (dict(proj_drop=1.5), r"proj_drop must be a number in \[0, 1\)"),
    ],
)
def test_every_argument_mistake_is_a_user_error(kwargs, match):
    args = dict(dim=16, num_heads=4, grid_size=8) | kwargs
    with pytest.raises(lkca.UserError, match=match):
        LKCA(**args)


def test_inputs_of_a_wrong_type_or_dtype_are_one_line_user_errors():
    """Integer tokens once gave an all-zero int64 output and a multi-line AutotuneWarning; a numpy
    array an AttributeError. Both are refused before anything runs, naming the fix."""
    import warnings

    import numpy as np

    m = LKCA(16, 4, (6, 5))
    cases = [
        (torch.randint(0, 9, (2, 30, 16)),
         "expected floating-point tokens .* got dtype int64; .*nn.Embedding"),
        (torch.zeros(2, 16, 6, 5, dtype=torch.bool), "got dtype bool"),
        (np.zeros((2, 30, 16), np.float32), "got a numpy ndarray; pass torch.from_numpy"),
        ([[0.0] * 16] * 30, "got list; pass torch.as_tensor"),
    ]
    for x, match in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no autotuning of a doomed call either
            with pytest.raises(lkca.InvalidArgumentError, match=match) as err:
                m(x)
        assert "\n" not in str(err.value)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):  # every float dtype still runs
        assert m(torch.randn(1, 30, 16, dtype=dtype)).dtype == dtype


def test_api_mistakes_are_user_errors():
    with pytest.raises(lkca.UserError, match="unknown model 'lkca_bb'; did you mean"):
        lkca.create_model("lkca_bb")
    model = lkca.create_model("vit_lkca_500k", img_size=16, depth=1, dim=16, num_heads=2)
    with pytest.raises(lkca.UserError, match="not divisible by the patch size"):
        lkca.profile(model, 31)
    for size in (0, -1, "x", (32,), 32.0):
        with pytest.raises(lkca.UserError, match="profile: img_size must be"):
            lkca.profile(model, size)
    with pytest.raises(lkca.UserError, match="profile: in_chans must be"):
        lkca.profile(model, 16, in_chans=0)
    with pytest.raises(lkca.UserError, match=r"expected images \(B, 3, H, W\)"):
        lkca.profile(model, 16, in_chans=5)
    m = LKCA(16, 4, 8)
    with pytest.raises(lkca.UserError, match="unknown impl 'fast'"):
        m.impl = "fast"
