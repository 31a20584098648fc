"""T2T-ViT: soft splits down to an 8x8 grid, fixed sinusoidal positions."""

import pytest
import torch

from lkca.models.baselines.t2t import T2TConfig, T2TViT, num_soft_splits


@pytest.mark.parametrize("size, splits, side", [(64, 3, 8), (32, 2, 8), (8, 1, 4)])
def test_soft_splits_bring_the_image_to_an_8x8_grid(size, splits, side):
    assert num_soft_splits(size) == splits
    model = T2TViT(T2TConfig(img_size=size, dim=16, depth=1, num_heads=1, token_dim=8))
    assert len(model.tokens_to_token.restructure) == splits - 1
    tokens, grid = model.tokens_to_token(torch.randn(2, 3, size, size))
    assert grid == (side, side) and tokens.shape == (2, grid[0] * grid[1], 16)


def test_positions_are_fixed_and_follow_the_token_count():
    model = T2TViT(T2TConfig(dim=16, depth=1, num_heads=1, token_dim=8)).eval()
    assert "pos_embed" not in dict(model.named_parameters())
    assert model(torch.randn(1, 3, 96, 96)).shape == (1, 200)  # 12x12 tokens, a new table
