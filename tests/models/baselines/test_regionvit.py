"""RegionViT as the authors build it (models/regionvit.py, create_model.py rows 'regionvit-t',
'-s', '-b'): parameter counts from the documented shape, forwards at 32 and 64 px, windows."""

import pytest
import torch

from lkca.models.baselines.regionvit import RegionViT, RegionViTConfig, relative_position_index

# create_model.py: (dims, depths); window img_size // 8, local patch (img_size // 8) // 2
ROWS = {"regionvit_t": ((48, 72, 108, 112), (1, 1, 2, 1)),
        "regionvit_s": ((48, 96, 128, 256), (1, 2, 3, 2)),
        "regionvit_b": ((64, 128, 256, 512), (2, 2, 8, 2))}


def authors_params(img, classes, dims, depths):
    """Parameters of the authors' RegionViT, written from its documented layers."""
    window, inner = img // 8, 4 * 32  # R2LTransformer's defaults: 4 heads of 32
    region = (img // 16) * window  # local_patch_size * window_size
    total = 3 * 8 * 8 * dims[0] + dims[0] + 3 * region**2 * dims[0] + dims[0]  # two tokenizers
    for i, (d, n) in enumerate(zip(dims, depths)):
        if i:
            total += 9 * dims[i - 1] * d + d  # shared 3x3 / stride-2 downsample
        attn = 2 * d + 3 * d * inner + inner * d + d
        ff = 2 * d + d * 4 * d + 4 * d + 4 * d * d + d
        total += (2 * window - 1) ** 2 * 4 + n * (attn + ff)  # relative position table
    return total + 2 * dims[-1] + dims[-1] * classes + classes


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("img, classes", [(32, 10), (64, 200)])
def test_row_has_the_authors_parameters_and_runs(name, img, classes, authors_row):
    authors_row(name, img, classes, authors_params(img, classes, *ROWS[name]))


def test_relative_position_index_is_the_authors():
    """(d_row + s - 1) + (d_col + s - 1) * (2s - 1) for a 2x2 window in a table of size s = 3."""
    index = relative_position_index((2, 2), 3)
    assert index[0].tolist() == [12, 7, 11, 6]  # token (0, 0) to (0, 0), (0, 1), (1, 0), (1, 1)
    assert index.diagonal().unique().tolist() == [12]


def test_a_local_token_changes_only_its_own_window_before_the_regions_mix():
    """One block on a 4x4 local map in 2x2 windows: a local token reaches the other windows only
    through the regional tokens, so with one region per window its change stays in the window's
    local tokens and that window's regional token."""
    torch.manual_seed(0)
    model = RegionViT(RegionViTConfig(img_size=16, dims=(8,), depths=(1,), heads=2, dim_head=4,
                                      window_size=2)).eval()
    stage = model.stages[0]
    local, region = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)
    changed = local.clone()
    changed[0, :, 0, 0] += torch.randn(8)  # not a shift of all channels: LayerNorm removes it
    (a, ra), (b, rb) = stage(local, region), stage(changed, region)
    moved = (a - b).abs().sum(1)[0] > 0
    assert moved.nonzero().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert ((ra - rb).abs().sum(1)[0] > 0).nonzero().tolist() == [[0, 0]]
