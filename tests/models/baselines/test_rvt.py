"""RvT as the authors build it (models/rvt.py, create_model.py rows 'rvt-t', 'rvt-s'): parameter
counts from the documented shape, forwards at 32 and 64 px, rotary queries / keys."""

import math

import pytest
import torch

from lkca.models.baselines.rvt import RvT, RvTConfig, axial_rotary_angles, rotate

# create_model.py: (dim, depth, heads, mlp_dim); dim_head is rvt.py's default 64
ROWS = {"rvt_t": (64, 6, 8, 64), "rvt_s": (128, 7, 8, 128)}


def authors_params(img, classes, dim, depth, heads, mlp, dim_head=64):
    """Parameters of the authors' RvT, written from its documented layers."""
    p, inner = img // 8, heads * dim_head
    patch = 3 * p * p * dim + dim
    attn = (2 * dim + 25 * dim + dim * inner  # LN, depthwise 5x5 + pointwise (no bias) query
            + (dim * inner + inner if dim != inner else 0)  # the class token's query
            + 2 * dim * inner + inner * dim + dim)  # k, v (no bias), output
    ff = 2 * dim + dim * 2 * mlp + 2 * mlp + mlp * dim + dim  # LN, GEGLU in, out
    return patch + dim + depth * (attn + ff) + 2 * dim + dim * classes + classes


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("img, classes", [(32, 10), (64, 200)])
def test_row_has_the_authors_parameters_and_runs(name, img, classes, authors_row):
    authors_row(name, img, classes, authors_params(img, classes, *ROWS[name]))


def test_rotation_angles_are_the_authors_axial_ones():
    """Channel pair i of a head turns by pi * row * s_i (first half) or pi * col * s_i, rows and
    columns spaced over [-1, 1], s = linspace(1, img_size / 2, dim_head / 4)."""
    angles = axial_rotary_angles((3, 3), dim_head=8, img_size=32).view(3, 3, 4)
    s = torch.tensor([1.0, 16.0])
    torch.testing.assert_close(angles[0, 2], torch.cat([-math.pi * s, math.pi * s]))
    torch.testing.assert_close(angles[1, 0], torch.cat([0 * s, -math.pi * s]))
    x = torch.tensor([1.0, 0.0, 0.0, 2.0])
    turned = rotate(x[None], torch.tensor([[math.pi / 2, math.pi]]))[0]
    torch.testing.assert_close(turned, torch.tensor([0.0, 1.0, 0.0, -2.0]), atol=1e-6, rtol=0)


def test_the_class_token_is_not_rotated_and_dim_head_needs_4_channels():
    model = RvT(RvTConfig(img_size=16, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=16)).eval()
    assert not any("pos" in n for n, _ in model.named_parameters())
    with pytest.raises(ValueError, match="multiple of 4"):
        RvT(RvTConfig(dim_head=6))
