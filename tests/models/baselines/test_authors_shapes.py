"""Swin, CaiT, T2T, MobileViT ("MobileViTv2" rows), CvT, DeepViT at the authors' shapes.

Every row's parameter count equals the one derived here, from the shape the authors'
``models/create_model.py`` gives the row (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-
TinyImageNet) and the layers their ``models/<family>.py`` builds, at CIFAR (32x32, 10 classes)
and Tiny-ImageNet (64x64, 200 classes); and every row runs forward at both inputs.
"""

import pytest
import torch

import lkca


def linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def norm(c):  # LayerNorm or BatchNorm: weight and bias
    return 2 * c


def swin(C, depths, heads, img, K, window=4, mlp=2):
    """models/swin.py: conv patch embedding (patch 2 at 32x32, 4 above) + LayerNorm, absolute
    position embedding, per block LN, qkv (bias), proj, relative-position table (2w-1)^2 x heads,
    LN, MLP; patch merging (LN 4C, Linear 4C -> 2C without bias) after every stage but the last;
    LN, head."""
    patch = 2 if img == 32 else 4
    side = img // patch
    n = 3 * C * patch * patch + C + norm(C) + side * side * C
    for i, (depth, h) in enumerate(zip(depths, heads)):
        w = min(window, side)
        block = (norm(C) + linear(C, 3 * C) + linear(C, C) + (2 * w - 1) ** 2 * h + norm(C)
                 + linear(C, mlp * C) + linear(mlp * C, C))
        n += depth * block
        if i < len(depths) - 1:
            n += norm(4 * C) + linear(4 * C, 2 * C, bias=False)
            C, side = 2 * C, side // 2
    return n + norm(C) + linear(C, K)


def vit_pytorch_patch_embed(D, patch):
    """vit-pytorch: LN over the (p, p, 3) pixels, Linear, LN."""
    pd = 3 * patch * patch
    return norm(pd) + linear(pd, D) + norm(D)


def feed_forward(D, M):
    return norm(D) + linear(D, M) + linear(M, D)


def cait(D, depth, cls_depth, heads, dim_head, M, img, K):
    """models/cait.py: per layer LayerScale (D) x 2, attention (LN, to_q, to_kv without bias, two
    heads x heads mixing matrices, to_out), feed-forward; position table, class token."""
    patch, inner = img // 8, heads * dim_head
    attn = norm(D) + linear(D, inner, False) + linear(D, 2 * inner, False) + 2 * heads ** 2 \
        + linear(inner, D)
    layer = D + attn + D + feed_forward(D, M)
    return (vit_pytorch_patch_embed(D, patch) + (img // patch) ** 2 * D + D
            + (depth + cls_depth) * layer + norm(D) + linear(D, K))


def t2t(splits, D, depth, heads, dim_head, M, img, K):
    """models/t2t.py: unfold (kernel k, stride s, padding s // 2) widths 3 k^2 ...; between splits a
    one-head transformer as wide as the tokens (LN, qkv without bias, no output projection,
    feed-forward, final LN); Linear to D; class token, positions; transformer ending in LN; head."""
    w, side, n = 3, img, 0
    for i, (k, s) in enumerate(splits):
        w, side = w * k * k, (side + 2 * (s // 2) - k) // s + 1
        if i < len(splits) - 1:
            n += norm(w) + linear(w, 3 * w, False) + feed_forward(w, w) + norm(w)
    inner = heads * dim_head
    layer = norm(D) + linear(D, 3 * inner, False) + linear(inner, D) + feed_forward(D, M)
    return (n + linear(w, D) + D + (side * side + 1) * D + depth * layer + norm(D) + norm(D)
            + linear(D, K))


def deepvit(D, depth, heads, dim_head, M, img, K):
    """models/deepvit.py: attention LN, qkv without bias, Theta (heads x heads), LayerNorm over the
    heads, to_out; feed-forward; class token, positions (N + 1); head."""
    patch, inner = img // 8, heads * dim_head
    layer = (norm(D) + linear(D, 3 * inner, False) + heads ** 2 + norm(heads) + linear(inner, D)
             + feed_forward(D, M))
    return (vit_pytorch_patch_embed(D, patch) + ((img // patch) ** 2 + 1) * D + D
            + depth * layer + norm(D) + linear(D, K))


def conv_bn(i, o, k):
    return i * o * k * k + norm(o)


def mobilevit(dims, c, img, K):
    """models/mbvit.py: 3x3 stem; inverted residuals (expansion 4: 1x1, depthwise 3x3, 1x1, each
    with BN); MobileViT blocks (3x3, 1x1, transformer of 4 heads of 8 with MLP ratio 2 / 4 / 4 and
    2 / 4 / 3 layers, 1x1, 3x3 fusion of 2C); 1x1 head conv; Linear without bias."""
    def mv2(i, o):
        h = 4 * i
        return conv_bn(i, h, 1) + h * 9 + norm(h) + conv_bn(h, o, 1)
    n = conv_bn(3, c[0], 3) + sum(mv2(i, o) for i, o in [
        (c[0], c[1]), (c[1], c[2]), (c[2], c[3]), (c[2], c[3]), (c[3], c[4]), (c[5], c[6]),
        (c[7], c[8])])
    for d, layers, r, ch in zip(dims, (2, 4, 3), (2, 4, 4), (c[5], c[7], c[9])):
        n += conv_bn(ch, ch, 3) + conv_bn(ch, d, 1) + conv_bn(d, ch, 1) + conv_bn(2 * ch, ch, 3)
        n += layers * (norm(d) + linear(d, 3 * 32, False) + linear(32, d) + feed_forward(d, r * d))
    return n + conv_bn(c[9], c[10], 1) + linear(c[10], K, bias=False)


def cvt(dims, kernels, heads, depths, K, dim_head=64, mult=4):
    """models/cvt.py: per stage a conv embedding (bias) + channel LN; per block channel LN, q and kv
    projections (depthwise 3x3, BN, 1x1 without bias), 1x1 output conv; channel LN, 1x1 convs with
    ratio 4; average pooling, Linear."""
    n, c_in = 0, 3
    for C, k, h, depth in zip(dims, kernels, heads, depths):
        inner = h * dim_head
        attn = (norm(C) + 9 * C + norm(C) + C * inner + 9 * C + norm(C) + C * 2 * inner
                + linear(inner, C))
        n += c_in * C * k * k + C + norm(C) + depth * (attn + feed_forward(C, mult * C))
        c_in = C
    return n + linear(c_in, K)


# (our name, the authors' row, params(img, classes) from the row's create_model.py shape)
ROWS = [
    ("swin_t", "swin-t", lambda img, K: swin(64, (1, 2, 1), (2, 4, 8), img, K)),
    ("swin_s", "swin-s", lambda img, K: swin(84, (1, 3, 2), (3, 6, 12), img, K)),
    ("cait_t", "cait-t", lambda img, K: cait(72, 16, 1, 4, 32, 144, img, K)),
    ("cait_s", "cait-s", lambda img, K: cait(96, 18, 2, 4, 64, 192, img, K)),
    ("t2t_t", "t2t-t", lambda img, K: t2t(((11, 8),), 128, 10, 4, 32, 128, img, K)),
    ("t2t_s", "t2t-s", lambda img, K: t2t(((11, 8), (7, 4)), 96, 3, 4, 24, 96, img, K)),
    ("t2t_b", "t2t-b", lambda img, K: t2t(((7, 4), (3, 2), (2, 1)), 256, 8, 4, 64, 256, img, K)),
    ("mobilevitv2_t", "mbv2-t", lambda img, K: mobilevit(
        (54, 60, 72), (10, 20, 36, 36, 54, 54, 72, 72, 94, 94, 384), img, K)),
    ("mobilevitv2_s", "mbv2-s", lambda img, K: mobilevit(
        (144, 180, 224), (24, 48, 54, 54, 72, 72, 108, 108, 120, 120, 384), img, K)),
    ("mobilevitv2_b", "mbv2", lambda img, K: mobilevit(
        (224, 302, 324), (48, 53, 72, 72, 80, 80, 120, 120, 156, 156, 384), img, K)),
    ("cvt_b", "cvt-b", lambda img, K: cvt((32, 96, 192), (7, 3, 3), (1, 3, 6), (1, 2, 10), K)),
    ("deepvit_t", "deepvit-t", lambda img, K: deepvit(80, 10, 4, 64, 80, img, K)),
    ("deepvit_s", "deepvit-s", lambda img, K: deepvit(136, 14, 4, 64, 136, img, K)),
]
INPUTS = [(32, 10), (64, 200)]


@pytest.mark.parametrize("name, row, formula", ROWS, ids=[r[0] for r in ROWS])
@pytest.mark.parametrize("img, classes", INPUTS, ids=["cifar", "tiny"])
def test_params_equal_the_authors_shape(name, row, formula, img, classes):
    model = lkca.create_model(name, img_size=img, num_classes=classes)
    assert sum(p.numel() for p in model.parameters()) == formula(img, classes), row


def test_a_few_counts_as_the_authors_code_gives_them():
    """Spot values (the authors' classes built and counted outside this repository) that the
    formulas above must reproduce: a formula bug shared with the model would not."""
    table = {r[0]: r[2] for r in ROWS}
    assert table["swin_t"](32, 10) == 1_012_220 and table["cait_t"](32, 10) == 1_001_306
    assert table["t2t_b"](64, 200) == 13_452_002 and table["cvt_b"](64, 200) == 6_515_944
    assert table["mobilevitv2_b"](64, 200) == 8_169_134
    assert table["deepvit_s"](64, 200) == 2_544_800


@pytest.mark.parametrize("name", [r[0] for r in ROWS])
def test_forward_at_32_and_64(name):
    for img, classes in INPUTS:
        model = lkca.create_model(name, img_size=img, num_classes=classes).eval()
        with torch.no_grad():
            out = model(torch.randn(2, 3, img, img))
        assert out.shape == (2, classes) and torch.isfinite(out).all()


def test_docs_table_and_results_are_up_to_date(monkeypatch):
    """docs/baselines.md's table of these rows is the one benchmarks/authors_shapes_rows.py renders from
    benchmarks/results/authors_shapes_rows.json, whose params are the models' of today."""
    import importlib.util
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "authors_shapes_rows.py"
    spec = importlib.util.spec_from_file_location("authors_shapes_rows", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["authors_shapes_rows.py", "--check"])
    assert module.main() == 0, "stale: run python benchmarks/authors_shapes_rows.py (needs ptflops)"
    assert [r[0] for r in module.ROWS] == [r[0] for r in ROWS]
    import json

    rows = json.loads(module.OUT.read_text())["rows"]
    for r in rows:  # the docs' claims about the figures
        paper_at = module.PAPER_INPUT.get(r["alias"], "cifar" if r["paper"]["img_size"] == 32
                                          else "tiny")
        assert abs(r[paper_at]["authors_macs"] / r["paper"]["macs"] - 1) < 0.01, r["name"]
        if r["readme"]:
            assert abs(r["tiny"]["authors_macs"] / r["readme"][1] - 1) < 0.01, r["name"]
        for key in ("cifar", "tiny"):
            diff = r[key]["module_macs"] - r[key]["authors_module_macs"]
            pooling = r["alias"].split("_")[0] in module.POOLING
            assert diff == 0 if not pooling else -0.0002 < diff / r[key]["module_macs"] < 0, r
