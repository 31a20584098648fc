"""CrossViT: two branches at two patch sizes, fused through their class tokens."""

import torch

from lkca.models.baselines.crossvit import CrossViT, CrossViTConfig
from lkca.models.registry import paper_figures


def _tiny():
    torch.manual_seed(0)
    return CrossViT(CrossViTConfig(dims=(12, 24), depths=(1, 1), num_multiscale=2))


def test_branches_see_16x16_and_8x8_patch_grids_at_64x64():
    model = _tiny()
    assert [pe.grid_size for pe in model.patch_embeds] == [(16, 16), (8, 8)]
    cls_s, cls_l = model.forward_branches(torch.randn(2, 3, 64, 64))
    assert cls_s.shape == (2, 12) and cls_l.shape == (2, 24)


def test_logits_are_the_mean_of_both_heads():
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    cls_s, cls_l = model.forward_branches(x)
    torch.testing.assert_close(model(x), (model.heads[0](cls_s) + model.heads[1](cls_l)) / 2)


def test_cross_attention_carries_each_branch_into_the_other():
    """The small-patch branch's class token depends on the large-patch branch's embedding (only
    through the fusion), and the other way round. In eval mode: in training, drop-path may drop
    the fusion branch of every sample and cut the path this test looks for."""
    model = _tiny().eval()
    cls_s, cls_l = model.forward_branches(torch.randn(2, 3, 64, 64))
    large_embed, small_embed = model.patch_embeds[1].proj.weight, model.patch_embeds[0].proj.weight
    g_l = torch.autograd.grad(cls_s.sum(), large_embed, retain_graph=True)[0]
    g_s = torch.autograd.grad(cls_l.sum(), small_embed)[0]
    assert g_l.abs().sum() > 0 and g_s.abs().sum() > 0


def test_crossvit_t_takes_crossvit_9s_shape_where_ti_misses(param_count):
    """(The registered widths' neighbours: test_baselines.py.)"""
    target = paper_figures("crossvit_t")["params"]
    for d in (36, 39):  # CrossViT-Ti's shape: the widths either side of the count
        ti = param_count("crossvit_t", dims=(d, 2 * d), depths=(1, 4), mlp_ratio=4.0)
        assert abs(ti / target - 1) > 0.05
