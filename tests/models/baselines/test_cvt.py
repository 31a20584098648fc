"""CvT: convolutional token embedding and projections, class token in the last stage only."""

import torch

from lkca.models.baselines.cvt import ConvAttention, CvT, CvTConfig
from lkca.models.registry import paper_figures


def test_keys_and_values_are_strided_and_every_token_attends_to_the_class_token():
    torch.manual_seed(0)
    attn = ConvAttention(8, 2, kv_stride=2, qkv_bias=True).eval()
    x = torch.randn(1, 1 + 16, 8)  # class token + a 4x4 map
    assert attn.k(torch.randn(1, 8, 4, 4)).shape == (1, 4, 8)  # 16 tokens -> 4 keys
    y = x.clone()
    y[0, 0] += 1.0
    out_x, out_y = attn(x, (4, 4), True), attn(y, (4, 4), True)
    # the class token is a key/value of every query, so every output moves
    assert ((out_x - out_y).abs().sum(-1) > 0).all()


def test_pyramid_and_class_token_placement():
    model = CvT(CvTConfig(dims=(8, 16, 32), num_heads=(1, 2, 4), depths=(1, 1, 1))).eval()
    assert [s.cls_token is not None for s in model.stages] == [False, False, True]
    x = torch.randn(1, 3, 64, 64)
    sizes = []
    for stage in model.stages:
        x, _ = stage(x)
        sizes.append(tuple(x.shape[-2:]))
    assert sizes == [(16, 16), (8, 8), (4, 4)]


def test_cvt_13s_width_misses_the_paper(param_count):
    """CvT-13's width is >5% off either way (CvT-B's neighbours: test_baselines.py)."""
    target = paper_figures("cvt_b")["params"]
    for depth in (2, 3):
        ratio = param_count("cvt_b", dims=(64, 192, 384), depths=(1, 2, depth)) / target
        assert abs(ratio - 1) > 0.05
