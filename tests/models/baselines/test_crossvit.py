"""CrossViT as the authors build it (models/crossvit.py, create_model.py rows 'crossvit-t',
'crossvit-s'): parameter counts from the documented shape, forwards at 32 and 64 px."""

import pytest
import torch

from lkca.models.baselines.crossvit import CrossViT, CrossViTConfig

# create_model.py: (width of both branches = their MLP width, cross-attention depth, depth);
# both branches at patch img_size // 8, encoders of 1 and 4 blocks, 8 heads of 16 everywhere
ROWS = {"crossvit_t": (102, 1, 2), "crossvit_s": (128, 2, 3)}


def authors_params(img, classes, dim, cross_depth, depth):
    """Parameters of the authors' CrossViT, written from its documented layers."""
    p, inner = img // 8, 8 * 16
    pixels = 3 * p * p
    embed = 2 * pixels + pixels * dim + dim + 2 * dim + ((img // p) ** 2 + 1) * dim + dim
    attn = 2 * dim + dim * inner + 2 * dim * inner + inner * dim + dim  # LN, q, kv, out
    ff = 2 * dim + dim * dim + dim + dim * dim + dim  # MLP width = dim in both rows

    def encoder(blocks):
        return blocks * (attn + ff) + 2 * dim  # + final LayerNorm

    block = encoder(1) + encoder(4) + cross_depth * 2 * attn  # no projections: equal widths
    return 2 * embed + depth * block + 2 * (2 * dim + dim * classes + classes)


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("img, classes", [(32, 10), (64, 200)])
def test_row_has_the_authors_parameters_and_runs(name, img, classes, authors_row):
    authors_row(name, img, classes, authors_params(img, classes, *ROWS[name]))


def test_branches_of_different_widths_and_patches_project_the_class_tokens():
    cfg = CrossViTConfig(img_size=32, patch_sizes=(4, 8), dims=(16, 32), mlp_dims=(16, 32),
                         dim_head=4, depth=1, num_classes=5)
    model = CrossViT(cfg).eval()
    cross = model.blocks[0].sm_cross[0]
    assert (cross.proj_in.in_features, cross.proj_in.out_features) == (16, 32)
    assert model.lg_branch.pos_embed.shape == (1, 17, 32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
