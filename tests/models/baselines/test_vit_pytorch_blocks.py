"""The vit-pytorch pieces the authors' files share: pixel-major patches, attention's inner width
and its missing output projection for one full-width head."""

import torch
import torch.nn.functional as F

from lkca.models.baselines.vit_pytorch_blocks import (
    MultiHeadAttention,
    PixelPatchEmbed,
    Transformer,
)


def test_patches_are_flattened_pixel_major_then_channel():
    embed = PixelPatchEmbed(patch_size=2, in_chans=3, dim=4)
    x = torch.arange(3 * 4 * 4, dtype=torch.float).view(1, 3, 4, 4)
    flat = x.reshape(1, 3, 2, 2, 2, 2).permute(0, 2, 4, 3, 5, 1).reshape(1, 4, 12)
    # patch (0, 1): rows 0-1, columns 2-3; (p1, p2, c) order: pixel (0, 2) of channels 0, 1, 2 first
    assert flat[0, 1, :3].tolist() == [2.0, 18.0, 34.0]
    ref = embed.norm_out(embed.proj(embed.norm_in(flat)))
    torch.testing.assert_close(embed(x), ref)


def test_attention_inner_width_and_the_one_head_case():
    attn = MultiHeadAttention(dim=8, heads=2, dim_head=6)
    assert attn.qkv.weight.shape == (36, 8) and attn.proj.weight.shape == (8, 12)
    assert attn.qkv.bias is None
    one = MultiHeadAttention(dim=8, heads=1, dim_head=8)
    assert isinstance(one.proj, torch.nn.Identity)
    x = torch.randn(2, 5, 8)
    q, k, v = one.qkv(one.norm(x)).chunk(3, -1)
    torch.testing.assert_close(one(x), F.scaled_dot_product_attention(q, k, v), atol=1e-5,
                               rtol=1e-5)


def test_transformer_ends_in_a_layer_norm_only_when_asked():
    assert isinstance(Transformer(8, 1, 2, 4, 8, final_norm=False).norm, torch.nn.Identity)
    assert isinstance(Transformer(8, 1, 2, 4, 8, final_norm=True).norm, torch.nn.LayerNorm)
