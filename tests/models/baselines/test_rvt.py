"""RvT: rotary queries/keys make attention logits depend on the relative offset only."""

import pytest
import torch

from lkca.models.baselines.rvt import RvT, RvTConfig, axial_rotary_angles, rotate


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
