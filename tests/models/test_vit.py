"""VisionTransformer: layouts (the three-sub-layer block among them), pooling, grid change,
forward_intermediates, stochastic depth and initialisation options, registry sizes."""

import math

import pytest
import torch

import lkca
from lkca.errors import ConfigError
from lkca.layers import LKA, LKCA, Attention
from lkca.models.registry import legacy_model, paper_figures
from lkca.models.vit import VisionTransformer, ViTConfig, mixer_layout

TINY = dict(img_size=8, patch_size=2, dim=16, depth=2, num_heads=2)


@pytest.mark.parametrize(
    "mixers, layout",
    [("attn", "AAAA"), ("lkca", "LLLL"), ("alternate", "LALA"), ("LLAA", "LLAA"), ("lka", "KKKK"),
     ("attn_lkca", "HHHH"), ("HLAK", "HLAK")],
)
def test_mixer_layout(mixers, layout):
    assert mixer_layout(mixers, 4) == layout
    m = VisionTransformer(dim=16, depth=4, num_heads=2, mixers=mixers)
    kinds = {"A": [Attention], "L": [LKCA], "K": [LKA], "H": [Attention, LKCA]}
    mixers_of = [[type(getattr(b, n)) for n in b.mixer_names] for b in m.blocks]
    assert mixers_of == [kinds[c] for c in layout]
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_bad_layout_pool_and_options():
    with pytest.raises(ValueError, match="4 letters"):
        VisionTransformer(dim=16, depth=4, num_heads=2, mixers="LLA")
    with pytest.raises(ValueError, match="pool='cls' needs attention alone"):
        VisionTransformer(dim=16, depth=2, num_heads=2, mixers="attn_lkca", pool="cls")
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        VisionTransformer(img_size=30, patch_size=4)
    for bad, match in [({"drop_path_schedule": "cosine"}, "drop_path_schedule 'cosine'"),
                       ({"init": "xavier"}, "init 'xavier' is not one of spt, trunc_normal"),
                       ({"kernel_heads": 5}, r"kernel_heads \(5\) must divide dim \(16\)"),
                       ({"drop_rate": 1.0}, "must lie in"), ({"pool": "max"}, "pool must be")]:
        with pytest.raises(ConfigError, match=match):
            ViTConfig(dim=16, num_heads=2, **bad)


@pytest.mark.parametrize("overrides, refused", [
    (dict(dim=64, num_heads=5, mixers="lkca"), "the heads of LKCA"),
    (dict(dim=64, num_heads=5, mixers="attn"), "the heads of attention"),
    (dict(dim=64, num_heads=5, mixers="attn", head_dim=16), None),  # attention's own head width
    (dict(dim=64, num_heads=5, mixers="lkca", kernel_heads=4), None),  # LKCA's own kernel count
    (dict(dim=64, num_heads=5, mixers="lka"), None),  # LKA has no heads
])
def test_heads_that_do_not_split_dim_name_the_config_key(overrides, refused):
    if refused is None:
        VisionTransformer(img_size=8, patch_size=4, depth=1, **overrides)
        return
    with pytest.raises(ConfigError, match=f"dim \\(64\\) must be a multiple of num_heads \\(5\\), "
                       f"{refused}; .*model_args.num_heads, e.g. --set model_args.num_heads=4"):
        VisionTransformer(img_size=8, patch_size=4, depth=1, **overrides)


def test_runs_on_another_image_size():
    for mixers in ("alternate", "attn_lkca"):
        m = VisionTransformer(dim=16, depth=2, num_heads=2, mixers=mixers).eval()
        assert m(torch.randn(1, 3, 48, 64)).shape == (1, 10)


def test_three_sub_layer_block_equals_a_hand_written_reference():
    """x += SA(LN(x)); x += LKCA(LN(x)); x += MLP(LN(x)), written out with plain tensor ops."""
    torch.manual_seed(0)
    m = VisionTransformer(mixers="attn_lkca", kernel_heads=1, kernel_size=3, **TINY).eval()
    img = torch.randn(2, 3, 8, 8)
    block = m.blocks[0]
    assert [k for k in dict(block.named_children())] == [
        "norm1", "attn", "norm2", "lkca", "norm3", "mlp", "drop_path"]
    x, grid = m._embed(img)  # (2, 16 tokens, 16), grid (4, 4)
    B, N, C = x.shape

    def ln(norm, t):
        mu, var = t.mean(-1, keepdim=True), t.var(-1, unbiased=False, keepdim=True)
        return (t - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias

    # self-attention, 2 heads of 8, softmax(QK^T / sqrt(8)) V
    q, k, v = (ln(block.norm1, x) @ block.attn.qkv.weight.T).reshape(B, N, 3, 2, 8).permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1) @ v  # (B, 2, N, 8)
    x = x + att.transpose(1, 2).reshape(B, N, C) @ block.attn.proj.weight.T + block.attn.proj.bias
    # LKCA: one 3x3 kernel shared by all 16 channels, zero padding, cross-correlation
    y = ln(block.norm2, x).transpose(1, 2).reshape(B, C, 4, 4)
    w = block.lkca.weight[0]  # (3, 3)
    padded = torch.nn.functional.pad(y, (1, 1, 1, 1))
    conv = sum(w[a, b] * padded[:, :, a:a + 4, b:b + 4] for a in range(3) for b in range(3))
    x = x + conv.reshape(B, C, N).transpose(1, 2)
    # MLP
    h = torch.nn.functional.gelu(ln(block.norm3, x) @ block.mlp.fc1.weight.T + block.mlp.fc1.bias)
    x = x + h @ block.mlp.fc2.weight.T + block.mlp.fc2.bias
    torch.testing.assert_close(block(m._embed(img)[0], grid), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_heads", [1, None])
def test_three_sub_layer_model_gives_the_same_output_with_every_lkca_implementation(kernel_heads):
    torch.manual_seed(0)
    m = VisionTransformer(mixers="attn_lkca", kernel_heads=kernel_heads, **TINY).eval()
    x = torch.randn(3, 3, 8, 8)
    outs = {}
    for impl in ("conv", "toeplitz", "fft", "auto"):
        for mod in m.modules():
            if isinstance(mod, LKCA):
                mod.impl = impl
        outs[impl] = m(x)
    for impl in ("toeplitz", "fft", "auto"):
        torch.testing.assert_close(outs[impl], outs["conv"], rtol=1e-5, atol=1e-5)


def test_kernel_heads_is_the_number_of_kernels_per_block():
    per_head = VisionTransformer(mixers="attn_lkca", **TINY)
    per_block = VisionTransformer(mixers="attn_lkca", kernel_heads=1, **TINY)
    assert per_head.blocks[0].lkca.weight.shape == (2, 7, 7)  # num_heads kernels, global 7x7
    assert per_block.blocks[0].lkca.weight.shape == (1, 7, 7)
    lkca_only = VisionTransformer(mixers="lkca", kernel_heads=4, **TINY)
    assert lkca_only.blocks[0].mixer.num_heads == 4


SPT_VIT_B = 2_692_426  # SPT's ViT at CIFAR-10 (class token, 65-row position table)


def test_parameter_counts_of_each_reading_at_lkca_b_match_the_arithmetic():
    """The arithmetic of docs/block-readings.md, from SPT's ViT-B (dim 192, depth 9, 12 heads):
    the LKCA-only model is lkca 0.1.0's 2,751,010; the three-sub-layer readings drop the class
    token and its position row (2 x 192), add one 15x15 kernel per block (9 x 225) or per head
    (9 x 12 x 225), and a LayerNorm before each LKCA (9 x 2 x 192)."""
    def count(**kw):
        return sum(p.numel() for p in VisionTransformer(**kw).parameters())

    assert count(mixers="attn", pool="cls") == SPT_VIT_B == lkca.profile(
        lkca.create_model("vit_2p7m"), 32)["params"]
    no_cls, kernels_block, kernels_head, lkca_norms = 2 * 192, 9 * 225, 9 * 12 * 225, 9 * 2 * 192
    assert SPT_VIT_B - no_cls + kernels_block == 2_694_067  # without the LKCA LayerNorm
    assert SPT_VIT_B - no_cls + kernels_head == 2_716_342
    per_block = count(mixers="attn_lkca", kernel_heads=1)
    per_head = count(mixers="attn_lkca")
    assert per_block == SPT_VIT_B - no_cls + kernels_block + lkca_norms == 2_697_523
    assert per_head == SPT_VIT_B - no_cls + kernels_head + lkca_norms == 2_719_798
    assert count(mixers="lkca", depth=18) == 2_751_010


def test_vit_position_table_covers_the_class_token_as_spt():
    vit = lkca.create_model("vit_2p7m")
    assert vit.pos_embed.pos.shape == (1, 65, 192) and vit.pos_embed.prefix_tokens == 1
    legacy = VisionTransformer(mixers="attn", pool="cls", cls_pos_embed=False)
    assert legacy.pos_embed.pos.shape == (1, 64, 192)
    torch.manual_seed(0)
    m = VisionTransformer(mixers="attn", pool="cls", **TINY).eval()
    x, _ = m._embed(torch.zeros(1, 3, 8, 8))  # zero images: patch tokens = the conv bias
    torch.testing.assert_close(x[0, 0], m.cls_token[0, 0] + m.pos_embed.pos[0, 0])
    assert m(torch.randn(2, 3, 12, 16)).shape == (2, 10)  # another grid: class row kept


@pytest.mark.parametrize("schedule, rates", [("constant", [0.1] * 4),
                                             ("linear", [0.0, 0.1 / 3, 0.2 / 3, 0.1])])
def test_drop_path_schedule(schedule, rates):
    m = VisionTransformer(dim=16, depth=4, num_heads=2, drop_path_rate=0.1,
                          drop_path_schedule=schedule)
    assert [b.drop_path.drop_prob for b in m.blocks] == pytest.approx(rates)


def test_registered_models_take_spt_training_settings():
    for name in ("vit_2p7m", "lkca_b", "vit_lkca_12m"):
        cfg = lkca.create_model(name, drop_path_rate=0.1).cfg
        assert (cfg.drop_path_schedule, cfg.init) == ("constant", "spt"), name
        assert {b.drop_path.drop_prob for b in lkca.create_model(name, drop_path_rate=0.1).blocks
                } == {0.1}


def test_spt_initialisation_statistics():
    """SPT's models/vit.py: xavier_normal_ weights, zero biases, LayerNorm 1/0, position table and
    class token torch.randn; the LKCA kernel zero as the authors' (kernel_init="conv": as a
    convolution filter; docs/models.md)."""
    torch.manual_seed(0)
    fresh = VisionTransformer(dim=32, depth=2, num_heads=2, mixers="HL", kernel_heads=1)
    assert all((mod.weight == 0).all() for mod in fresh.modules() if isinstance(mod, LKCA))
    m = VisionTransformer(dim=192, depth=3, num_heads=12, mixers="HAH", pool="mean",
                          kernel_heads=1, init="spt", kernel_init="conv")
    fc1 = m.blocks[0].mlp.fc1.weight  # (384, 192): xavier std sqrt(2 / (192 + 384))
    std = math.sqrt(2 / (192 + 384))
    # the sample std of n normal draws has a relative standard error of 1 / sqrt(2 n)
    tol = 4 / math.sqrt(2 * fc1.numel())
    assert abs(fc1.std().item() / std - 1) < tol and abs(fc1.mean().item()) < 4 * std / math.sqrt(
        fc1.numel())
    qkv = m.blocks[1].mixer.qkv.weight  # (576, 192)
    assert abs(qkv.std().item() / math.sqrt(2 / (192 + 576)) - 1) < 4 / math.sqrt(2 * qkv.numel())
    patch = m.patch_embed.proj.weight  # as SPT's Linear(48, 192)
    assert abs(patch.std().item() / math.sqrt(2 / (48 + 192)) - 1) < 4 / math.sqrt(2 * patch.numel())
    pos = m.pos_embed.pos
    assert abs(pos.std().item() - 1) < 4 / math.sqrt(2 * pos.numel())
    kernel = m.blocks[0].lkca.weight  # (1, 15, 15): uniform in +-1/15
    assert kernel.abs().max().item() <= 1 / 15 and kernel.std().item() > 0.6 / (15 * math.sqrt(3))
    biases = [mod.bias for mod in m.modules() if isinstance(mod, torch.nn.Linear) and mod.bias is not None]
    assert all((b == 0).all() for b in biases)
    norms = [mod for mod in m.modules() if isinstance(mod, torch.nn.LayerNorm)]
    assert all((n.weight == 1).all() and (n.bias == 0).all() for n in norms)
    vit = VisionTransformer(dim=192, depth=1, num_heads=12, pool="cls", init="spt")
    assert 0.7 < vit.cls_token.std().item() < 1.3  # torch.randn(1, 1, 192)


def test_trunc_normal_initialisation_is_lkca_0_1_0s():
    torch.manual_seed(0)
    m = VisionTransformer(dim=192, depth=2, num_heads=12, mixers="attn_lkca", init="trunc_normal")
    fc1 = m.blocks[0].mlp.fc1.weight
    assert abs(fc1.std().item() / 0.02 - 1) < 0.05
    assert abs(m.pos_embed.pos.std().item() / 0.02 - 1) < 0.1
    assert abs(m.blocks[0].lkca.weight.std().item() / 0.02 - 1) < 0.2


@pytest.mark.parametrize("pool, mixers", [("mean", "attn_lkca"), ("cls", "attn")])
def test_forward_intermediates(pool, mixers):
    torch.manual_seed(0)
    m = VisionTransformer(mixers=mixers, pool=pool, **{**TINY, "depth": 3}).eval()
    x = torch.randn(2, 3, 8, 8)
    every = m.forward_intermediates(x)
    assert len(every) == 3 and all(t.shape == (2, 16, 4, 4) for t in every)
    last_two = m.forward_intermediates(x, indices=2)
    for a, b in zip(last_two, every[1:]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(m.forward_intermediates(x, indices=[-1, 0])[0], every[0])
    tokens = m.norm(m.forward_features(x)[0])  # head_norm="pooled": the last block's tokens
    patch = tokens[:, 1:] if pool == "cls" else tokens
    final = patch.transpose(1, 2).reshape(2, 16, 4, 4)
    normed = m.forward_intermediates(x, indices=[0, 2], final_norm=True)
    torch.testing.assert_close(normed[0], every[0])  # not the last block: raw
    torch.testing.assert_close(normed[1], final)  # the last block: after the final LayerNorm
    torch.testing.assert_close(m.forward_intermediates(x, [2], norm=True)[0], final)
    for bad in (4, [3], []):
        with pytest.raises(ValueError, match="forward_intermediates"):
            m.forward_intermediates(x, bad)


def test_no_classifier_with_zero_classes():
    m = VisionTransformer(num_classes=0, **TINY)
    assert isinstance(m.head, torch.nn.Identity)
    assert m(torch.randn(2, 3, 8, 8)).shape == (2, 16)


@pytest.mark.parametrize("mixers", ["lkca", "lka", "attn_lkca"])
def test_drop_rate_reaches_every_mixer(mixers):
    """Dropout on each mixer's output (LKCA without projections too), as attention's proj_drop."""
    m = VisionTransformer(mixers=mixers, drop_rate=0.5, **TINY)
    drops = {type(mod).__name__: mod.proj_drop.p for mod in m.modules()
             if isinstance(mod, (LKCA, LKA, Attention))}
    assert set(drops.values()) == {0.5}
    torch.manual_seed(0)
    mixer = LKCA(16, 2, (4, 4), proj_drop=0.5).train()
    out = mixer(torch.randn(4, 16, 16))
    assert 0.3 < (out == 0).float().mean().item() < 0.7


MODELS = lkca.list_models(baselines=False)  # baselines: tests/models/baselines/


def test_every_name_and_alias_is_registered():
    names = {f"vit_{s}" for s in ("500k", "1m", "2m", "2p7m", "4m", "8m")}
    names |= {f"vit_lkca_{s}" for s in ("500k", "1m", "2m", "2p7m", "4m", "8m", "12m")}
    assert names | {"lkca_digits"} == set(MODELS)
    aliases = {"vit_lite": "vit_1m", "vit_small": "vit_2p7m", "lkca_t": "vit_lkca_1m",
               "lkca_b": "vit_lkca_2p7m", "lkca_l": "vit_lkca_12m"}
    for alias, name in aliases.items():
        assert alias in lkca.list_models(aliases=True)
        a, b = lkca.create_model(alias), lkca.create_model(name)
        assert lkca.profile(a, paper_figures(name)["img_size"])["params"] == sum(
            p.numel() for p in b.parameters()
        )


@pytest.mark.parametrize("name", [n for n in MODELS if paper_figures(n)])
def test_registered_model_runs_and_matches_paper_params(name):
    paper = paper_figures(name)
    model = lkca.create_model(name)
    size = paper["img_size"]
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, paper["num_classes"])
    stats = lkca.profile(model, size)
    assert abs(stats["params"] / paper["params"] - 1) <= 0.03, stats
    # the paper's counts leave out the token-mixing matmuls; without them ours match its MACs
    assert abs((stats["macs"] - stats["token_mixing_macs"]) / paper["macs"] - 1) <= 0.06, stats


def test_the_digits_demo_model_is_its_own_name():
    """lkca 0.1.0's demo (its vit_lkca_500k with depth 6 on digits) under its own name."""
    m = lkca.create_model("lkca_digits")
    assert m.cfg.img_size == 8 and m.grid_size == (8, 8) and m.layout == "LLLLLL"
    assert (m.cfg.dim, m.cfg.num_heads, m.cfg.init, m.cfg.head_norm) == (
        80, 5, "trunc_normal", "tokens")
    assert sum(p.numel() for p in m.parameters()) == 170_120
    assert not paper_figures("lkca_digits")
    name, overrides = legacy_model("vit_lkca_500k", {"depth": 6})
    old = lkca.create_model(name, img_size=8, **overrides)
    assert [tuple(v.shape) for v in old.state_dict().values()] == [
        tuple(v.shape) for v in m.state_dict().values()]


def test_unknown_model_suggests_close_matches():
    with pytest.raises(ValueError, match="did you mean vit_lkca_2m"):
        lkca.create_model("vit_lkca_2n")
    with pytest.raises(ValueError, match="unknown model option"):
        lkca.create_model("lkca_b", widht=3)


def test_overrides_and_patch_follow_the_image_size():
    m = lkca.create_model("lkca_t", num_classes=100, img_size=64, lkca_impl="fft")
    assert m.grid_size == (8, 8) and m.head.out_features == 100
    assert {b.mixer.impl for b in m.blocks} == {"fft"}
