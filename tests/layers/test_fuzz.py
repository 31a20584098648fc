"""Fuzz (hypothesis): any accepted LKCA / ViT configuration runs forward and backward with finite
outputs; any rejected one raises ValueError, never an obscure internal error; the same for records
of LKCA's implementation choices."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lkca import LKCA, VisionTransformer

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    heads=st.integers(1, 4), per_head=st.integers(1, 4), gh=st.integers(1, 7),
    gw=st.integers(1, 7), k=st.one_of(st.none(), st.integers(-1, 15)),
    impl=st.sampled_from(["conv", "toeplitz", "fft", "auto", "bogus"]),
    projections=st.booleans(), batch=st.integers(1, 3),
    run_grid=st.one_of(st.none(), st.tuples(st.integers(1, 9), st.integers(1, 9))),
)
def test_lkca_accepts_or_rejects_cleanly(heads, per_head, gh, gw, k, impl, projections, batch,
                                         run_grid):
    dim = heads * per_head
    try:
        m = LKCA(dim, heads, (gh, gw), kernel_size=k, impl=impl, projections=projections)
    except ValueError:
        return
    grid = run_grid or (gh, gw)
    x = torch.randn(batch, grid[0] * grid[1], dim, requires_grad=True)
    out = m(x, grid_size=run_grid)
    out.square().sum().backward()
    assert out.shape == x.shape and torch.isfinite(out).all() and torch.isfinite(x.grad).all()


@FAST
@given(
    img=st.integers(4, 20), patch=st.integers(1, 6), dim=st.sampled_from([4, 6, 8, 12]),
    depth=st.integers(1, 3), heads=st.integers(1, 4),
    mixers=st.sampled_from(["attn", "lkca", "lka", "alternate", "LA", "LLL", "X"]),
    pool=st.sampled_from(["mean", "cls", "max"]), kernel=st.one_of(st.none(), st.integers(1, 9)),
)
def test_vit_accepts_or_rejects_cleanly(img, patch, dim, depth, heads, mixers, pool, kernel):
    try:
        m = VisionTransformer(img_size=img, patch_size=patch, dim=dim, depth=depth,
                              num_heads=heads, mixers=mixers, pool=pool, kernel_size=kernel,
                              num_classes=3)
    except ValueError:
        return
    out = m(torch.randn(2, 3, img, img))
    out.sum().backward()
    assert out.shape == (2, 3) and torch.isfinite(out).all()


def test_wrong_image_size_at_run_time_is_a_value_error():
    m = VisionTransformer(img_size=8, patch_size=4, dim=8, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        m(torch.randn(1, 3, 10, 8))


@FAST
@given(text=st.text(max_size=60), impl=st.sampled_from(["conv", "toeplitz", "fft", "auto", ""]))
def test_pinning_any_record_is_accepted_or_a_user_error(text, impl):
    """A record read back from a run directory or checkpoint: replayed, or rejected in one line."""
    from lkca.autotune.tuner import ShapeKey, pin_impl_choices
    from lkca.errors import UserError

    try:
        pin_impl_choices({text: impl})
    except UserError as err:
        assert len(str(err).splitlines()) == 1
    else:
        assert impl in ("conv", "toeplitz", "fft") and str(ShapeKey.parse(text)) == text
    finally:
        pin_impl_choices(None)


@FAST
@given(device=st.sampled_from(["cpu", "cuda"]),
       dtype=st.sampled_from(["float32", "bfloat16", "float32+autocast:float16"]),
       training=st.booleans(), batch=st.one_of(st.none(), st.integers(1, 4096)),
       heads=st.integers(1, 16), d=st.integers(1, 128),
       grid=st.tuples(st.integers(1, 99), st.integers(1, 99)),
       kernel=st.tuples(st.integers(0, 99), st.integers(0, 99)))
def test_shape_keys_round_trip(device, dtype, training, batch, heads, d, grid, kernel):
    from lkca.autotune.tuner import ShapeKey

    key = ShapeKey(device, dtype, training, batch, heads * d, heads, grid,
                   (2 * kernel[0] + 1, 2 * kernel[1] + 1))
    assert ShapeKey.parse(str(key)) == key
