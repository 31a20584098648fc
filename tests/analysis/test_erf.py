"""Effective receptive field: exact support for known receptive fields, area ratios by hand."""

import pytest
import torch
from torch import nn

from lkca.analysis.erf import area_ratios, effective_receptive_field, real_images, token_map
from lkca.layers import LKCA, PatchEmbed
from lkca.models.vit import VisionTransformer


class PatchLKCA(nn.Module):
    """patch embed (patch 1) -> one LKCA layer (kernel k, no MLP) -> (B, C, H, W) token map."""

    def __init__(self, grid: int, k: int, impl: str) -> None:
        super().__init__()
        self.embed = PatchEmbed(grid, 1, 3, 8)
        self.lkca = LKCA(8, 2, grid, k, impl)
        nn.init.normal_(self.lkca.weight)  # every kernel entry clearly non-zero

    def forward(self, x):
        tokens, (h, w) = self.embed(x)
        return self.lkca(tokens).transpose(1, 2).reshape(len(x), -1, h, w)


def _window(shape, centre, radius):
    mask = torch.zeros(shape, dtype=torch.bool)
    (cy, cx), (ry, rx) = centre, radius
    mask[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1] = True
    return mask


@pytest.mark.parametrize("impl", ["conv", "toeplitz", "fft"])
@pytest.mark.parametrize("grid, k", [(9, 3), (8, 5)])
def test_single_lkca_layer_sees_exactly_its_kernel_window(impl, grid, k):
    torch.manual_seed(0)
    erf = effective_receptive_field(PatchLKCA(grid, k, impl), torch.randn(4, 3, grid, grid))
    inside = _window((grid, grid), (grid // 2, grid // 2), (k // 2, k // 2))
    assert (erf[inside] > 0).all()
    outside = erf[~inside]
    if impl == "fft":  # the FFT's rounding leaves ~1e-8 where the exact answer is 0
        assert outside.abs().max() <= 1e-5 * erf.max()
    else:
        assert (outside == 0).all()
        assert area_ratios(erf, (1.0,))[0] == k * k / grid**2  # all the mass in the k x k window


@pytest.mark.parametrize("depth", [1, 2])
def test_vit_lkca_receptive_field_grows_by_the_kernel_per_block(depth):
    # patch 2, 8x8 grid, kernel 3: each block reaches one token (2 pixels) further each way;
    # LayerNorm, MLP and position embedding act per token and do not widen it.
    torch.manual_seed(0)
    model = VisionTransformer(img_size=16, patch_size=2, dim=16, depth=depth, num_heads=2,
                              mixers="lkca", kernel_size=3, lkca_impl="conv",
                              kernel_init="conv")  # a zero kernel (the authors' init) mixes nothing
    erf = effective_receptive_field(model, torch.randn(3, 3, 16, 16))
    # centre token (4, 4) covers pixels 8..9; after `depth` blocks tokens 4-depth..4+depth
    rows = slice(2 * (4 - depth), 2 * (4 + depth) + 2)
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[rows, rows] = True
    assert (erf[inside] > 0).all() and (erf[~inside] == 0).all()


def test_attention_sees_the_whole_image():
    torch.manual_seed(0)
    model = VisionTransformer(img_size=8, patch_size=1, dim=16, depth=1, num_heads=2)
    assert (effective_receptive_field(model, torch.randn(2, 3, 8, 8)) > 0).all()


def test_erf_keeps_the_model_mode_and_leaves_no_parameter_gradient():
    model = PatchLKCA(5, 3, "conv").train()
    effective_receptive_field(model, torch.randn(3, 3, 5, 5), batch_size=2)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    erf_one_batch = effective_receptive_field(model, torch.ones(3, 3, 5, 5))
    erf_batches = effective_receptive_field(model, torch.ones(3, 3, 5, 5), batch_size=1)
    torch.testing.assert_close(erf_one_batch, erf_batches)


def test_a_model_without_a_token_map_is_refused():
    with pytest.raises(ValueError, match="forward_intermediates"):
        effective_receptive_field(nn.Flatten(), torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("pool, mixers", [("mean", "lkca"), ("cls", "attn"), ("mean", "attn_lkca")])
def test_erf_map_is_the_last_block_output_before_the_norm(pool, mixers):
    torch.manual_seed(0)
    model = VisionTransformer(img_size=8, patch_size=2, dim=16, depth=2, num_heads=2,
                              mixers=mixers, pool=pool, head_norm="tokens").eval()
    x = torch.randn(2, 3, 8, 8)
    tmap = token_map(model, x)  # (B, dim, 4, 4)
    assert tmap.shape == (2, 16, 4, 4)
    tokens, grid = model.forward_features(x)
    patch_tokens = tokens[:, 1:] if pool == "cls" else tokens
    torch.testing.assert_close(model.norm(tmap.flatten(2).transpose(1, 2)), patch_tokens)


def test_area_ratios_on_a_hand_made_map():
    # mass 10: 20% (2) and 50% (5) need the 5 alone, 90% (9) needs 5 + 3 + 1 -> 3 of 4 pixels
    assert area_ratios(torch.tensor([[1.0, 5.0], [1.0, 3.0]])) == (0.25, 0.25, 0.75)
    one_hot = torch.zeros(10, 10)
    one_hot[3, 7] = 2.0
    assert area_ratios(one_hot) == (0.01, 0.01, 0.01)
    assert area_ratios(torch.ones(10, 10)) == (0.2, 0.5, 0.9)
    assert area_ratios(torch.ones(10, 10), (1.0,)) == (1.0,)
    with pytest.raises(ValueError, match="all zero"):
        area_ratios(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="thresholds"):
        area_ratios(torch.ones(3, 3), (1.5,))


def test_real_images_are_normalised_test_images_at_the_asked_size():
    x = real_images("digits", num_images=5)
    assert x.shape == (5, 3, 8, 8) and x.dtype == torch.float32
    assert x.min() < 0 < x.max()  # normalised by the data set's mean and std
    assert real_images("digits", num_images=5, img_size=16).shape == (5, 3, 16, 16)


def test_the_erf_numbers_docs_analysis_quotes(tmp_path, capsys):
    """docs/analysis.md's output block of `lkca erf --model vit_lkca_500k --model vit_500k` is
    what the command prints (init models are seeded, the images are the first 64 test digits)."""
    import re
    from pathlib import Path

    from lkca.cli import main

    page = (Path(__file__).resolve().parents[2] / "docs" / "analysis.md").read_text()
    block = re.search(r"```\n\$ lkca erf --model vit_lkca_500k --model vit_500k [^\n]*\n(.*?)```",
                      page, re.S)
    assert block, "docs/analysis.md no longer shows this command's output"
    assert main(["erf", "--model", "vit_lkca_500k", "--model", "vit_500k", "--device", "cpu",
                 "--out", str(tmp_path / "erf.png")]) == 0
    printed = capsys.readouterr().out.splitlines()
    quoted = [line for line in block.group(1).splitlines() if not line.startswith("wrote ")]
    assert [" ".join(line.split()) for line in printed[:len(quoted)]] == \
        [" ".join(line.split()) for line in quoted]
