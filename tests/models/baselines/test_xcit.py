"""XCiT as the authors build it (models/xcit.py, create_model.py rows 'xcit-t', 'xcit-s'):
parameter counts from the documented shape, forwards at 32 and 64 px, channel attention."""

import pytest
import torch

import lkca
from lkca.models.baselines.xcit import CrossCovarianceAttention, layer_scale_init

# create_model.py: (dim, depth, cls_depth, heads, dim_head, mlp_dim); patch img_size // 8
ROWS = {"xcit_t": (120, 8, 2, 4, 30, 120), "xcit_s": (192, 10, 2, 4, 48, 192)}


def authors_params(img, classes, dim, depth, cls_depth, heads, dim_head, mlp):
    """Parameters of the authors' XCiT, written from its documented layers."""
    p, inner = img // 8, heads * dim_head
    pixels = 3 * p * p
    embed = 2 * pixels + pixels * dim + dim + 2 * dim  # LN, Linear, LN
    pos = (img // p) ** 2 * dim
    ff = 2 * dim + dim * mlp + mlp + mlp * dim + dim
    xca = 2 * dim + 3 * dim * inner + heads + inner * dim + dim  # LN, qkv, temperature, out
    lpi = 2 * dim + 2 * (9 * dim + dim) + 2 * dim  # LN, two depthwise 3x3, BatchNorm
    class_attn = 2 * dim + 3 * dim * inner + inner * dim + dim  # LN, q, kv, out
    return (embed + pos + dim + depth * (3 * dim + xca + lpi + ff) + 2 * dim
            + cls_depth * (2 * dim + class_attn + ff) + 2 * dim + dim * classes + classes)


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("img, classes", [(32, 10), (64, 200)])
def test_row_has_the_authors_parameters_and_runs(name, img, classes, authors_row):
    authors_row(name, img, classes, authors_params(img, classes, *ROWS[name]))


def test_xca_mixes_channels_not_tokens():
    """The same channel mixing applies to every token: permuting the tokens permutes the output."""
    torch.manual_seed(0)
    xca = CrossCovarianceAttention(16, heads=2, dim_head=8)
    x = torch.randn(2, 10, 16)
    perm = torch.randperm(10)
    torch.testing.assert_close(xca(x)[:, perm], xca(x[:, perm]))


def test_layer_scale_starts_as_the_authors_file_sets_it():
    assert [layer_scale_init(i) for i in (1, 18, 19, 30)] == [0.1, 0.1, 1e-6, 1e-6]
    model = lkca.create_model("xcit_t")
    assert torch.all(model.blocks[7].gamma3 == 0.1) and torch.all(model.cls_blocks[1].gamma2 == 0.1)
