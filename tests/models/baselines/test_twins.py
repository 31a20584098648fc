"""Twins-SVT as the authors build it (models/twins_svt.py, create_model.py rows 'twinssvt-s',
'twinssvt-b'): parameter counts from the documented shape, forwards at 32 and 64 px, windows."""

import pytest
import torch

from lkca.models.baselines.twins import LocallyGroupedAttention

# create_model.py: (widths, depths); every stage patch 2, local window 8, global k 3, PEG 3
ROWS = {"twins_svt_s": ((16, 16, 24, 48), (1, 1, 2, 1)),
        "twins_svt_b": ((16, 32, 64, 128), (1, 1, 3, 2))}


def authors_params(classes, dims, depths):
    """Parameters of the authors' TwinsSVT, written from its documented layers (8 heads of 64 in
    every attention, no q/k/v bias; channel LayerNorms)."""
    inner, total, c_in = 8 * 64, 0, 3
    for i, (d, n) in enumerate(zip(dims, depths)):
        total += 2 * 4 * c_in + 4 * c_in * d + d + 2 * d  # patch merging: LN, 1x1 conv, LN
        lsa = 2 * d + d * inner + 2 * d * inner + inner * d + d
        gsa = 2 * d + d * inner + 9 * d * 2 * inner + inner * d + d  # k, v: 3x3 / stride 3
        ff = 2 * d + d * 4 * d + 4 * d + 4 * d * d + d
        block = gsa + ff + (lsa + ff if i < len(dims) - 1 else 0)  # the last stage: no LSA
        total += (1 + n) * block + 9 * d + d  # + PEG
        c_in = d
    return total + dims[-1] * classes + classes


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("img, classes", [(32, 10), (64, 200)])
def test_row_has_the_authors_parameters_and_runs(name, img, classes, authors_row):
    authors_row(name, img, classes, authors_params(classes, *ROWS[name]))


def test_lsa_keeps_windows_apart_and_cuts_a_window_larger_than_the_map():
    torch.manual_seed(0)
    lsa = LocallyGroupedAttention(8, heads=2, dim_head=4, window=2)
    x = torch.randn(1, 8, 4, 4)  # four 2x2 windows
    y = x.clone()
    y[0, :, 0, 0] += torch.randn(8)  # not a shift of all channels: the norm removes it
    changed = (lsa(x) - lsa(y)).abs().sum(1)[0] > 0
    assert changed.nonzero().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    whole = LocallyGroupedAttention(8, heads=2, dim_head=4, window=8)  # 4x4 map: one window
    assert ((whole(x) - whole(y)).abs().sum(1)[0] > 0).all()
    with pytest.raises(ValueError, match="does not split"):
        lsa(torch.randn(1, 8, 6, 5))
