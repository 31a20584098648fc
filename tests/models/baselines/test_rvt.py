"""RvT: rotary queries/keys make attention logits depend on the relative offset only."""

import pytest
import torch

import lkca
from lkca.models.baselines.rvt import RvT, RvTConfig, axial_rotary_angles, rotate
from lkca.models.registry import paper_figures


def test_rotary_logits_depend_on_the_relative_offset_only():
    torch.manual_seed(0)
    angles = axial_rotary_angles((6, 6), head_dim=8, base=100.0).view(6, 6, 4)
    q, k = torch.randn(8), torch.randn(8)

    def logit(a, b):  # q at grid position a, k at b
        return rotate(q[None], angles[a][None]) @ rotate(k[None], angles[b][None]).T

    torch.testing.assert_close(logit((1, 2), (3, 1)), logit((2, 4), (4, 3)))  # same offset
    assert not torch.allclose(logit((1, 2), (3, 1)), logit((1, 2), (3, 2)))  # another offset


def test_rotation_keeps_the_norm_and_needs_4_channels_per_head():
    x = torch.randn(5, 16, 8)
    angles = axial_rotary_angles((4, 4), 8, 10000.0)
    torch.testing.assert_close(rotate(x, angles).norm(dim=-1), x.norm(dim=-1))
    with pytest.raises(ValueError, match="multiple of 4"):
        RvT(RvTConfig(dim=36, num_heads=6))


def test_no_position_table_and_any_grid():
    model = RvT(RvTConfig(dim=32, depth=1, num_heads=2)).eval()
    assert not any("pos" in n for n, _ in model.named_parameters())
    assert model(torch.randn(1, 3, 40, 56)).shape == (1, 200)


def _params(name, **overrides):
    return sum(p.numel() for p in lkca.create_model(name, **overrides).parameters())


def _nearest(name, others):
    """The registered size is nearer the paper's count than each of ``others`` (overrides)."""
    target = paper_figures(name)["params"]
    ours = abs(_params(name) - target)
    assert all(ours < abs(_params(name, **o) - target) for o in others), name


@pytest.mark.parametrize("name, dim, depth", [("rvt_t", 128, 6), ("rvt_s", 192, 7)])
def test_depth_at_the_vits_width_is_the_nearest_the_paper(name, dim, depth):
    cfg = lkca.create_model(name).cfg
    assert (cfg.dim, cfg.depth) == (dim, depth)
    _nearest(name, [dict(depth=depth - 1), dict(depth=depth + 1)])
