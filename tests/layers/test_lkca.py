"""LKCA: the three implementations agree (forward and backward), equivariance, receptive field."""

import pytest
import torch
import torch.nn.functional as F

from lkca import LKCA
from lkca.layers.lkca import IMPLEMENTATIONS, global_kernel_size, toeplitz_matrix

IMPLS = ["conv", "toeplitz", "fft", "auto"]

# (grid, kernel_size or None for global, heads, dim, batch, run-time grid or None)
CASES = [
    ((8, 8), None, 12, 48, 3, None),
    ((8, 8), 5, 1, 8, 1, None),
    ((5, 7), None, 2, 8, 2, None),  # non-square, global kernel (9, 13)
    ((6, 4), (3, 5), 4, 16, 1, None),  # non-square kernel
    ((7, 7), 13, 3, 12, 2, None),
    ((8, 8), None, 4, 16, 2, (12, 10)),  # grid grows: kernel zero-padded in effect
    ((8, 8), None, 4, 16, 2, (4, 6)),  # grid shrinks: kernel centre-cropped
    ((4, 4), 3, 2, 8, 2, (9, 5)),
]


def _run(module, impl, x, grid):
    module.impl = impl
    module.zero_grad()
    x = x.clone().requires_grad_(True)
    out = module(x, grid_size=grid)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * g).sum().backward()
    return out.detach(), x.grad, module.weight.grad.clone()


@pytest.mark.parametrize("projections", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"g{c[0]}k{c[1]}h{c[2]}b{c[4]}r{c[5]}")
def test_implementations_agree(case, projections):
    grid, ksize, heads, dim, batch, run_grid = case
    torch.manual_seed(0)
    module = LKCA(dim, heads, grid, kernel_size=ksize, projections=projections)
    with torch.no_grad():
        module.weight.normal_()  # unit-scale kernel: differences are not hidden by a tiny init
    g = run_grid or grid
    x = torch.randn(batch, g[0] * g[1], dim)
    ref = _run(module, "conv", x, run_grid)
    scale = ref[0].abs().max()
    for impl in IMPLS[1:]:
        got = _run(module, impl, x, run_grid)
        for name, a, b in zip(("output", "input grad", "kernel grad"), ref, got):
            tol = 1e-5 * max(float(a.abs().max()), float(scale))
            assert (a - b).abs().max() <= tol, f"{impl} {name} differs from conv"


def test_matches_the_attention_view_definition():
    """Row i of the matrix holds the kernel at the offset from token i to each token j."""
    H, W, k = 4, 5, (5, 7)
    weight = torch.randn(1, *k)
    A = toeplitz_matrix(weight, (H, W))[0]
    for i in range(H * W):
        for j in range(H * W):
            dy, dx = j // W - i // W, j % W - i % W
            inside = abs(dy) <= k[0] // 2 and abs(dx) <= k[1] // 2
            expect = weight[0, dy + k[0] // 2, dx + k[1] // 2] if inside else 0.0
            assert A[i, j] == expect


def test_no_softmax_output_is_linear_in_values():
    m = LKCA(16, 4, 6)
    a, b = torch.randn(2, 36, 16), torch.randn(2, 36, 16)
    torch.testing.assert_close(m(a + 2 * b), m(a) + 2 * m(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_translation_equivariant_away_from_borders(impl):
    H = W = 16
    k = 5
    m = LKCA(8, 2, (H, W), kernel_size=k, impl=impl)
    img = torch.zeros(1, 8, H, W)
    img[..., 4:9, 3:8] = torch.randn(1, 8, 5, 5)  # content well inside the grid
    shifted = torch.roll(img, shifts=(3, 2), dims=(2, 3))

    def tokens(t):
        return t.flatten(2).transpose(1, 2)

    def grid(t):
        return t.transpose(1, 2).reshape(1, 8, H, W)

    out, out_s = grid(m(tokens(img))), grid(m(tokens(shifted)))
    torch.testing.assert_close(torch.roll(out, (3, 2), (2, 3)), out_s, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("impl", IMPLS)
def test_receptive_field_is_exactly_the_kernel(k, impl):
    H = W = 11
    m = LKCA(4, 1, (H, W), kernel_size=k, impl=impl)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.0)  # no zero inside the kernel
    x = torch.zeros(1, H * W, 4, requires_grad=True)
    centre = (H // 2) * W + W // 2
    m(x)[0, centre].sum().backward()
    mass = x.grad[0].abs().sum(-1).reshape(H, W)
    reach = mass > 1e-4 * mass.max()  # the FFT path leaves ~1e-8 round-off outside the kernel
    expected = torch.zeros(H, W, dtype=torch.bool)
    r = k // 2
    expected[H // 2 - r : H // 2 + r + 1, W // 2 - r : W // 2 + r + 1] = True
    assert torch.equal(reach, expected)


def test_default_kernel_is_global_and_params_per_head():
    m = LKCA(192, 12, (8, 8))
    assert m.kernel_size == global_kernel_size((8, 8)) == (15, 15)
    assert sum(p.numel() for p in m.parameters()) == 12 * 15 * 15
    mp = LKCA(192, 12, (8, 8), projections=True)
    assert sum(p.numel() for p in mp.parameters()) == 12 * 225 + 192 * 192 + (192 * 192 + 192)


def test_impl_reassignable_without_changing_results():
    m = LKCA(32, 4, (8, 6))
    x = torch.randn(2, 48, 32)
    outs = []
    for impl in ["auto", "conv", "fft", "toeplitz", "auto"]:
        m.impl = impl
        outs.append(m(x))
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=1e-5, atol=1e-6)
    assert m.state_dict().keys() == {"weight"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dim=16, num_heads=4, grid_size=8, kernel_size=4), "odd"),
        (dict(dim=16, num_heads=4, grid_size=8, kernel_size=17), "larger than 2 \\* grid - 1"),
        (dict(dim=16, num_heads=4, grid_size=(4, 8), kernel_size=(9, 3)), "larger than"),
        (dict(dim=16, num_heads=3, grid_size=8), "multiple of num_heads"),
        (dict(dim=16, num_heads=4, grid_size=8, impl="cuda"), "unknown impl"),
    ],
)
def test_bad_construction_is_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LKCA(**kwargs)


def test_bad_token_count_and_impl_at_run_time():
    m = LKCA(16, 4, 8)
    with pytest.raises(ValueError, match="63 tokens do not fill the 8x8 grid"):
        m(torch.randn(1, 63, 16))
    with pytest.raises(ValueError, match="do not fill the 5x5 grid"):
        m(torch.randn(1, 64, 16), grid_size=(5, 5))
    with pytest.raises(ValueError, match="unknown impl 'fast'"):
        m.impl = "fast"


def test_every_implementation_is_registered():
    assert set(IMPLEMENTATIONS) == {"conv", "toeplitz", "fft"}


# --- half precision: bf16 autocast runs on CPU too, so the GPU is not its first run ---------------


@pytest.mark.parametrize("impl", IMPLS)
def test_bf16_autocast_forward_and_backward_match_fp32(impl):
    """Each implementation under bf16 autocast against fp32 (relative error of a bf16 pipeline)."""
    torch.manual_seed(0)
    module = LKCA(32, 4, (8, 8), impl=impl, projections=True)
    with torch.no_grad():
        module.weight.normal_(std=0.1)
    x = torch.randn(3, 64, 32)
    ref = _run(module, "conv", x, None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _run(module, impl, x, None)
    assert got[0].dtype == torch.bfloat16  # the output projection ran in bf16
    for name, a, b in zip(("output", "input grad", "kernel grad"), ref, got):
        rel = (a - b.float()).norm() / a.norm()
        assert rel < 2e-2, f"{impl} {name}: relative error {rel:.2e}"


@pytest.mark.parametrize("dtype, autocast", [(torch.bfloat16, False), (torch.float32, True),
                                             (torch.float16, False)])
def test_fft_computes_in_fp32(monkeypatch, dtype, autocast):
    import lkca.layers.lkca as lkca_module

    seen = []
    apply = lkca_module._FFTConv.apply
    monkeypatch.setattr(lkca_module._FFTConv, "apply",
                        lambda x, w, *a: seen.append((x.dtype, w.dtype)) or apply(x, w, *a))
    v = torch.randn(2, 2, 36, 4, dtype=dtype, requires_grad=True)
    w = torch.randn(2, 11, 11, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = lkca_module.lkca_fft(v, w, (6, 6))
    out.float().sum().backward()
    assert seen == [(torch.float32, torch.float32)] and out.dtype == dtype
    assert v.grad.dtype == dtype and w.grad.dtype == torch.float32
    ref = lkca_module.lkca_conv(v.detach().double(), w.detach().double(), (6, 6))
    # only the output's rounding to dtype remains: a half-precision FFT would be far worse
    assert ((out.double() - ref).norm() / ref.norm()) < (4e-3 if dtype == torch.bfloat16 else 5e-4)


@pytest.mark.parametrize("grid, k", [((8, 8), (15, 15)), ((5, 7), (9, 13)), ((6, 4), (3, 5)),
                                     ((1, 5), (1, 3)), ((4, 1), (3, 1)), ((1, 1), (1, 1)),
                                     ((12, 10), (15, 15))])
def test_the_compile_path_builds_the_same_matrix_and_gradient(grid, k):
    """While compiling, toeplitz_matrix is built without unfold (inductor miscompiles its
    gradient): same values exactly, same gradient to rounding."""
    from lkca.layers.lkca import _toeplitz_by_repeat

    torch.manual_seed(0)
    w = torch.randn(3, *k, requires_grad=True)
    H, W = grid
    ph, pw = H - 1 - k[0] // 2, W - 1 - k[1] // 2
    views, repeat = toeplitz_matrix(w, grid), _toeplitz_by_repeat(F.pad(w, (pw, pw, ph, ph)), grid)
    assert torch.equal(views, repeat)
    g = torch.randn(views.shape)
    (a,) = torch.autograd.grad((views * g).sum(), w)
    (b,) = torch.autograd.grad((repeat * g).sum(), w)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
