"""T2T-ViT: soft splits as the authors' rows cut the image, small images still give a token."""

import pytest
import torch

from lkca.models.baselines.t2t import T2TConfig, T2TViT, soft_split, soft_split_side


@pytest.mark.parametrize("splits, size, side", [
    (((11, 8),), 64, 8), (((11, 8),), 32, 4), (((11, 8), (7, 4)), 64, 2),
    (((11, 8), (7, 4)), 32, 1), (((7, 4), (3, 2), (2, 1)), 64, 7), (((7, 4), (3, 2), (2, 1)), 32, 3),
])
def test_soft_splits_leave_the_authors_grids(splits, size, side):
    s = size
    for k, st in splits:
        s = soft_split_side(s, k, st)
    assert s == side
    model = T2TViT(T2TConfig(img_size=size, soft_splits=splits, dim=16, depth=1, num_heads=2,
                             dim_head=4, mlp_dim=16))
    assert model.tokens_to_token(torch.randn(2, 3, size, size)).shape == (2, side * side, 16)


def test_a_soft_split_is_an_unfold_of_neighbourhoods():
    x = torch.arange(2 * 4 * 4, dtype=torch.float).view(1, 2, 4, 4)
    tokens = soft_split(x, 2, 2)  # stride 2: padding 1, a 3x3 grid of 2x2 neighbourhoods
    assert tokens.shape == (1, 9, 8)
    assert tokens[0, 4].tolist() == [5, 6, 9, 10, 21, 22, 25, 26]  # channel-major


def test_maps_smaller_than_the_kernel_still_give_one_token():
    assert soft_split_side(8, 11, 8) == 1 and soft_split_side(1, 7, 4) == 1
