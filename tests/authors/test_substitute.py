"""Checkpoints in the authors' key layout (CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-
TinyImageNet ``models/swin.py``, ``models/cait.py``) convert to ours and give the logits the
authors' model computes: each checkpoint is built here from the documented names and shapes with
random values, and its logits are computed here from those tensors by the documented math."""

import pytest
import torch
import torch.nn.functional as F

import lkca
from lkca.authors import cait, cvt, deepvit, mobilevit, swin, t2t
from lkca.errors import AuthorsLayoutError, UserError

# the families whose converters substitute keys in order (lkca.authors.substitute)
SUBSTITUTED = {**swin.LAYOUTS, **cait.LAYOUTS, **t2t.LAYOUTS, **mobilevit.LAYOUTS, **cvt.LAYOUTS,
               **deepvit.LAYOUTS}


def random_checkpoint(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: 0.3 * torch.randn(s, generator=g) for k, s in shapes.items()}


def ln(x, sd, prefix):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + "weight"], sd[prefix + "bias"])


def lin(x, sd, prefix):
    return F.linear(x, sd[prefix + "weight"], sd.get(prefix + "bias"))


# ---- Swin-T as models/swin.py names its tensors (create_model.py: embed 64, depths 1/2/1,
# heads 2/4/8, window 4, MLP ratio 2, patch 2 at 32x32)
SWIN_T = dict(C=64, depths=(1, 2, 1), heads=(2, 4, 8), window=4, patch=2, img=32, K=10)


def swin_layout(C, depths, heads, window, patch, img, K):
    side = img // patch
    s = {"absolute_pos_embed": (1, side * side, C), "patch_embed.proj.weight": (C, 3, patch, patch),
         "patch_embed.proj.bias": (C,), "patch_embed.norm.weight": (C,),
         "patch_embed.norm.bias": (C,)}
    for i, (depth, h) in enumerate(zip(depths, heads)):
        w = min(window, side)
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            if j % 2 and side > w:
                s[p + "attn_mask"] = ((side // w) ** 2, w * w, w * w)
            s.update({p + "norm1.weight": (C,), p + "norm1.bias": (C,),
                      p + "attn.relative_position_bias_table": ((2 * w - 1) ** 2, h),
                      p + "attn.relative_position_index": (w * w, w * w),
                      p + "attn.qkv.weight": (3 * C, C), p + "attn.qkv.bias": (3 * C,),
                      p + "attn.proj.weight": (C, C), p + "attn.proj.bias": (C,),
                      p + "norm2.weight": (C,), p + "norm2.bias": (C,),
                      p + "mlp.fc1.weight": (2 * C, C), p + "mlp.fc1.bias": (2 * C,),
                      p + "mlp.fc2.weight": (C, 2 * C), p + "mlp.fc2.bias": (C,)})
        if i < len(depths) - 1:
            p = f"layers.{i}.downsample."
            s.update({p + "reduction.weight": (2 * C, 4 * C), p + "norm.weight": (4 * C,),
                      p + "norm.bias": (4 * C,)})
            C, side = 2 * C, side // 2
    s.update({"norm.weight": (C,), "norm.bias": (C,), "head.weight": (K, C), "head.bias": (K,)})
    return s


def swin_logits(sd, x, C, depths, heads, window, patch, img, K):
    """Swin as models/swin.py computes it, from the authors' tensors."""
    B = x.shape[0]
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=patch)
    t = ln(t.flatten(2).transpose(1, 2), sd, "patch_embed.norm.") + sd["absolute_pos_embed"]
    side = img // patch
    for i, (depth, h) in enumerate(zip(depths, heads)):
        w = min(window, side)
        n, nw = w * w, side // w
        ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        index = (ys[:, None] - ys[None] + w - 1) * (2 * w - 1) + (xs[:, None] - xs[None] + w - 1)
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            shift = w // 2 if j % 2 and side > w else 0
            y = ln(t, sd, p + "norm1.").view(B, side, side, C).roll((-shift, -shift), (1, 2))
            y = y.view(B, nw, w, nw, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, nw * nw, n, C)
            q, k, v = lin(y, sd, p + "attn.qkv.").view(B, nw * nw, n, 3, h, C // h).unbind(3)
            q, k, v = (a.transpose(2, 3) for a in (q, k, v))  # (B, windows, h, n, d)
            attn = (q * (C // h) ** -0.5) @ k.transpose(-1, -2)
            attn = attn + sd[p + "attn.relative_position_bias_table"][index].permute(2, 0, 1)
            if shift:  # regions of the shifted map; tokens of different regions do not attend
                region = torch.zeros(side, side)
                cuts = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
                for a, (r, c) in enumerate((r, c) for r in cuts for c in cuts):
                    region[r, c] = a
                region = region.view(nw, w, nw, w).permute(0, 2, 1, 3).reshape(nw * nw, n)
                attn = attn + ((region[:, :, None] != region[:, None]) * -100.0)[None, :, None]
            y = (attn.softmax(-1) @ v).transpose(2, 3).reshape(B, nw * nw, n, C)
            y = lin(y, sd, p + "attn.proj.").view(B, nw, nw, w, w, C).permute(0, 1, 3, 2, 4, 5)
            y = y.reshape(B, side, side, C).roll((shift, shift), (1, 2)).reshape(B, -1, C)
            t = t + y
            t = t + lin(F.gelu(lin(ln(t, sd, p + "norm2."), sd, p + "mlp.fc1.")), sd,
                        p + "mlp.fc2.")
        if i < len(depths) - 1:
            m = t.view(B, side, side, C)
            m = torch.cat([m[:, 0::2, 0::2], m[:, 1::2, 0::2], m[:, 0::2, 1::2], m[:, 1::2, 1::2]],
                          -1).reshape(B, -1, 4 * C)
            p = f"layers.{i}.downsample."
            t = F.linear(ln(m, sd, p + "norm."), sd[p + "reduction.weight"])
            C, side = 2 * C, side // 2
    return lin(ln(t, sd, "norm.").mean(1), sd, "head.")


# ---- CaiT-T as models/cait.py (vit-pytorch) names its tensors (create_model.py: dim 72, 16 + 1
# class layers, 4 heads of 32, MLP 144, patch 4 at 32x32)
CAIT_T = dict(D=72, depth=16, cls_depth=1, heads=4, dim_head=32, M=144, patch=4, img=32, K=10)


def cait_layout(D, depth, cls_depth, heads, dim_head, M, patch, img, K):
    pd, inner = 3 * patch * patch, heads * dim_head
    s = {"to_patch_embedding.1.weight": (pd,), "to_patch_embedding.1.bias": (pd,),
         "to_patch_embedding.2.weight": (D, pd), "to_patch_embedding.2.bias": (D,),
         "to_patch_embedding.3.weight": (D,), "to_patch_embedding.3.bias": (D,),
         "pos_embedding": (1, (img // patch) ** 2, D), "cls_token": (1, 1, D),
         "mlp_head.0.weight": (D,), "mlp_head.0.bias": (D,), "mlp_head.1.weight": (K, D),
         "mlp_head.1.bias": (K,)}
    for name, n in (("patch_transformer", depth), ("cls_transformer", cls_depth)):
        for i in range(n):
            a, f = f"{name}.layers.{i}.0.", f"{name}.layers.{i}.1."
            s.update({a + "scale": (1, 1, D), a + "fn.norm.weight": (D,), a + "fn.norm.bias": (D,),
                      a + "fn.to_q.weight": (inner, D), a + "fn.to_kv.weight": (2 * inner, D),
                      a + "fn.mix_heads_pre_attn": (heads, heads),
                      a + "fn.mix_heads_post_attn": (heads, heads),
                      a + "fn.to_out.0.weight": (D, inner), a + "fn.to_out.0.bias": (D,),
                      f + "scale": (1, 1, D), f + "fn.net.0.weight": (D,), f + "fn.net.0.bias": (D,),
                      f + "fn.net.1.weight": (M, D), f + "fn.net.1.bias": (M,),
                      f + "fn.net.4.weight": (D, M), f + "fn.net.4.bias": (D,)})
    return s


def cait_logits(sd, x, D, depth, cls_depth, heads, dim_head, M, patch, img, K):
    """CaiT as models/cait.py computes it, from the authors' tensors."""
    B, g = x.shape[0], img // patch
    t = x.view(B, 3, g, patch, g, patch).permute(0, 2, 4, 3, 5, 1).reshape(B, g * g, -1)
    t = ln(lin(ln(t, sd, "to_patch_embedding.1."), sd, "to_patch_embedding.2."), sd,
           "to_patch_embedding.3.") + sd["pos_embedding"]

    def attention(p, y, context):
        y = ln(y, sd, p + "norm.")
        keys = y if context is None else torch.cat([y, context], 1)
        q = lin(y, sd, p + "to_q.").view(B, -1, heads, dim_head).transpose(1, 2)
        k, v = (a.reshape(B, -1, heads, dim_head).transpose(1, 2)
                for a in lin(keys, sd, p + "to_kv.").chunk(2, -1))
        dots = torch.einsum("bhij,hg->bgij", q @ k.transpose(-1, -2) * dim_head ** -0.5,
                            sd[p + "mix_heads_pre_attn"])
        w = torch.einsum("bhij,hg->bgij", dots.softmax(-1), sd[p + "mix_heads_post_attn"])
        return lin((w @ v).transpose(1, 2).reshape(B, -1, heads * dim_head), sd, p + "to_out.0.")

    def transformer(name, n, y, context=None):
        for i in range(n):
            a, f = f"{name}.layers.{i}.0.", f"{name}.layers.{i}.1."
            y = attention(a + "fn.", y, context) * sd[a + "scale"] + y
            h = F.gelu(lin(ln(y, sd, f + "fn.net.0."), sd, f + "fn.net.1."))
            y = lin(h, sd, f + "fn.net.4.") * sd[f + "scale"] + y
        return y

    t = transformer("patch_transformer", depth, t)
    cls = transformer("cls_transformer", cls_depth, sd["cls_token"].expand(B, -1, -1), t)
    return lin(ln(cls[:, 0], sd, "mlp_head.0."), sd, "mlp_head.1.")


def test_from_authors_checkpoint_loads_a_comparison_model(tmp_path):
    """lkca.from_authors_checkpoint dispatches to this family's converter: a .pth as the authors'
    main.py saves it loads with the converted tensors."""
    theirs = random_checkpoint(swin_layout(**SWIN_T))
    path = tmp_path / "swin_t.pth"
    torch.save({"model_state_dict": theirs, "epoch": 3}, path)
    model = lkca.from_authors_checkpoint(path, "swin_t")
    state = model.state_dict()
    for key, tensor in SUBSTITUTED["swin_"](theirs).items():
        assert torch.equal(state[key], tensor), key


CASES = [("swin_t", SWIN_T, swin_layout, swin_logits, "swin_"),
         ("cait_t", CAIT_T, cait_layout, cait_logits, "cait_")]


@pytest.mark.parametrize("name, shape, layout, logits, prefix", CASES, ids=["swin_t", "cait_t"])
def test_authors_checkpoint_converts_and_gives_the_authors_logits(name, shape, layout, logits,
                                                                  prefix):
    theirs = random_checkpoint(layout(**shape))
    ours = SUBSTITUTED[prefix](theirs)
    model = lkca.create_model(name).eval()
    model.load_state_dict(ours, strict=True)
    # every tensor of theirs (but the buffers Swin rebuilds) is one of ours, values unchanged
    kept = [k for k in theirs if not k.endswith(("attn_mask", "relative_position_index"))]
    assert len(kept) == len(ours)
    assert sorted(round(float(v.double().sum()), 6) for k, v in theirs.items() if k in kept) == \
        sorted(round(float(v.double().sum()), 6) for v in ours.values())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), logits(theirs, x, **shape), atol=1e-4, rtol=1e-4)


def test_a_checkpoint_of_another_shape_builds_that_shape():
    """Tiny-ImageNet's Swin-T (patch 4, 200 classes): the shape comes from the tensors."""
    shape = dict(SWIN_T, patch=4, img=64, K=200)
    ours = SUBSTITUTED["swin_"](random_checkpoint(swin_layout(**shape)))
    model = lkca.create_model("swin_t", img_size=64, num_classes=200)
    model.load_state_dict(ours, strict=True)


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.update({"extra.weight": torch.zeros(1)}), "unexpected key 'extra.weight'"),
    (lambda sd: sd.pop("patch_transformer.layers.3.1.fn.net.4.bias"),
     r"missing 'blocks.3.ff.fc2.bias' \(ours\)"),
    (lambda sd: sd.update({"patch_transformer.layers.0.0.fn.to_out.0.bias": torch.zeros(5)}),
     r"'patch_transformer.layers.0.0.fn.to_out.0.bias' has shape \(5,\)"),
    (lambda sd: sd.pop("pos_embedding"), "no 'pos_embedding'"),
])
def test_a_foreign_checkpoint_is_refused_in_one_line(edit, message):
    sd = random_checkpoint(cait_layout(**CAIT_T))
    edit(sd)
    with pytest.raises(AuthorsLayoutError, match=message) as err:
        SUBSTITUTED["cait_"](sd)
    assert isinstance(err.value, UserError) and "\n" not in str(err.value)
    assert str(err.value).startswith("not the authors' CaiT layout: ")


def test_a_checkpoint_of_another_family_is_refused():
    with pytest.raises(AuthorsLayoutError, match="not the authors' CaiT layout: no"):
        SUBSTITUTED["cait_"](random_checkpoint(swin_layout(**SWIN_T)))


def test_every_family_of_this_half_has_a_converter():
    assert sorted(SUBSTITUTED) == ["cait_", "cvt_", "deepvit_", "mobilevitv2_", "swin_", "t2t_"]
    for prefix in SUBSTITUTED:
        assert any(n.startswith(prefix) for n in lkca.list_models()), prefix


# ---- The other families' layouts, from the names and shapes of the authors' files: they convert
# and load with every key and shape checked (the logits of the two families above are checked)
def bn(p, c):
    return {p + "weight": (c,), p + "bias": (c,), p + "running_mean": (c,), p + "running_var": (c,),
            p + "num_batches_tracked": ()}


def ln_shapes(p, c):
    return {p + "weight": (c,), p + "bias": (c,)}


def ff_shapes(p, d, m, last=4):
    return {**ln_shapes(p + "net.0.", d), p + "net.1.weight": (m, d), p + "net.1.bias": (m,),
            f"{p}net.{last}.weight": (d, m), f"{p}net.{last}.bias": (d,)}


def deepvit_layout(D=80, depth=10, heads=4, dim_head=64, M=80, patch=4, img=32, K=10):
    pd, inner = 3 * patch * patch, heads * dim_head
    s = {**ln_shapes("to_patch_embedding.1.", pd), "to_patch_embedding.2.weight": (D, pd),
         "to_patch_embedding.2.bias": (D,), **ln_shapes("to_patch_embedding.3.", D),
         "pos_embedding": (1, (img // patch) ** 2 + 1, D), "cls_token": (1, 1, D),
         **ln_shapes("mlp_head.0.", D), "mlp_head.1.weight": (K, D), "mlp_head.1.bias": (K,)}
    for i in range(depth):
        a = f"transformer.layers.{i}.0."
        s.update({**ln_shapes(a + "norm.", D), a + "to_qkv.weight": (3 * inner, D),
                  a + "reattn_weights": (heads, heads), **ln_shapes(a + "reattn_norm.1.", heads),
                  a + "to_out.0.weight": (D, inner), a + "to_out.0.bias": (D,),
                  **ff_shapes(f"transformer.layers.{i}.1.", D, M)})
    return s


def t2t_layout(D=96, depth=3, heads=4, dim_head=24, M=96, img=64, K=200):
    """t2t-s: soft splits 11/8 then 7/4 (widths 363, 17787), a 2x2 grid at 64x64."""
    w, inner = 363, heads * dim_head
    s = {**ln_shapes("to_patch_embedding.3.layers.0.0.norm.", w),
         "to_patch_embedding.3.layers.0.0.to_qkv.weight": (3 * w, w),
         **ff_shapes("to_patch_embedding.3.layers.0.1.", w, w),
         **ln_shapes("to_patch_embedding.3.norm.", w),
         "to_patch_embedding.8.weight": (D, w * 49), "to_patch_embedding.8.bias": (D,),
         "pos_embedding": (1, 5, D), "cls_token": (1, 1, D), **ln_shapes("transformer.norm.", D),
         **ln_shapes("mlp_head.0.", D), "mlp_head.1.weight": (K, D), "mlp_head.1.bias": (K,)}
    for i in range(depth):
        a = f"transformer.layers.{i}.0."
        s.update({**ln_shapes(a + "norm.", D), a + "to_qkv.weight": (3 * inner, D),
                  a + "to_out.0.weight": (D, inner), a + "to_out.0.bias": (D,),
                  **ff_shapes(f"transformer.layers.{i}.1.", D, M)})
    return s


def cvt_layout(K=200):
    """cvt-b: widths 32/96/192, kernels 7/3/3, heads 1/3/6 of 64, depths 1/2/10."""
    s, c_in = {"to_logits.2.weight": (K, 192), "to_logits.2.bias": (K,)}, 3
    for i, (C, k, h, depth) in enumerate(zip((32, 96, 192), (7, 3, 3), (1, 3, 6), (1, 2, 10))):
        inner, p = 64 * h, f"layers.{i}."
        s.update({p + "0.weight": (C, c_in, k, k), p + "0.bias": (C,), p + "1.g": (1, C, 1, 1),
                  p + "1.b": (1, C, 1, 1)})
        for j in range(depth):
            a, f = f"{p}2.layers.{j}.0.", f"{p}2.layers.{j}.1."
            s.update({a + "norm.g": (1, C, 1, 1), a + "norm.b": (1, C, 1, 1),
                      a + "to_out.0.weight": (C, inner, 1, 1), a + "to_out.0.bias": (C,),
                      f + "net.0.g": (1, C, 1, 1), f + "net.0.b": (1, C, 1, 1),
                      f + "net.1.weight": (4 * C, C, 1, 1), f + "net.1.bias": (4 * C,),
                      f + "net.4.weight": (C, 4 * C, 1, 1), f + "net.4.bias": (C,)})
            for proj, out in (("to_q", inner), ("to_kv", 2 * inner)):
                s.update({a + proj + ".net.0.weight": (C, 1, 3, 3), **bn(a + proj + ".net.1.", C),
                          a + proj + ".net.2.weight": (out, C, 1, 1)})
        c_in = C
    return s


def mobilevit_layout(K=10):
    """mbv2-t: dims 54/60/72, channels 10, 20, 36, 36, 54, 54, 72, 72, 94, 94, 384."""
    c, dims = (10, 20, 36, 36, 54, 54, 72, 72, 94, 94, 384), (54, 60, 72)

    def conv(p, i, o, k):
        return {p + "0.weight": (o, i, k, k), **bn(p + "1.", o)}
    s = {**conv("conv1.", 3, c[0], 3), **conv("conv2.", c[9], c[10], 1), "fc.weight": (K, c[10])}
    for i, (a, b) in enumerate([(c[0], c[1]), (c[1], c[2]), (c[2], c[3]), (c[2], c[3]),
                                (c[3], c[4]), (c[5], c[6]), (c[7], c[8])]):
        p, h = f"mv2.{i}.conv.", 4 * a
        s.update({p + "0.weight": (h, a, 1, 1), **bn(p + "1.", h), p + "3.weight": (h, 1, 3, 3),
                  **bn(p + "4.", h), p + "6.weight": (b, h, 1, 1), **bn(p + "7.", b)})
    for i, (d, n, r, ch) in enumerate(zip(dims, (2, 4, 3), (2, 4, 4), (c[5], c[7], c[9]))):
        p = f"mvit.{i}."
        s.update({**conv(p + "conv1.", ch, ch, 3), **conv(p + "conv2.", ch, d, 1),
                  **conv(p + "conv3.", d, ch, 1), **conv(p + "conv4.", 2 * ch, ch, 3)})
        for j in range(n):
            a, f = f"{p}transformer.layers.{j}.0.", f"{p}transformer.layers.{j}.1."
            s.update({**ln_shapes(a + "norm.", d), a + "fn.to_qkv.weight": (96, d),
                      a + "fn.to_out.0.weight": (d, 32), a + "fn.to_out.0.bias": (d,),
                      **ln_shapes(f + "norm.", d), f + "fn.net.0.weight": (r * d, d),
                      f + "fn.net.0.bias": (r * d,), f + "fn.net.3.weight": (d, r * d),
                      f + "fn.net.3.bias": (d,)})
    return s


@pytest.mark.parametrize("name, layout, prefix, img, classes", [
    ("deepvit_t", deepvit_layout, "deepvit_", 32, 10), ("t2t_s", t2t_layout, "t2t_", 64, 200),
    ("cvt_b", cvt_layout, "cvt_", 64, 200), ("mobilevitv2_t", mobilevit_layout, "mobilevitv2_", 32, 10),
], ids=["deepvit_t", "t2t_s", "cvt_b", "mobilevitv2_t"])
def test_other_families_convert_with_every_key_and_shape_checked(name, layout, prefix, img,
                                                                 classes):
    theirs = random_checkpoint(layout())
    for k in theirs:
        if k.endswith("running_var"):
            theirs[k] = theirs[k].abs() + 0.5
        if k.endswith("num_batches_tracked"):
            theirs[k] = torch.tensor(7)
    ours = SUBSTITUTED[prefix](theirs)
    assert len(ours) == len(theirs)
    model = lkca.create_model(name, img_size=img, num_classes=classes).eval()
    model.load_state_dict(ours, strict=True)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, img, img))).all()


def test_tensors_that_imply_no_model_are_refused_in_one_line():
    sd = random_checkpoint(cait_layout(**CAIT_T))
    sd["patch_transformer.layers.0.0.fn.to_q.weight"] = torch.zeros(130, 72)  # 130 / 4 heads
    with pytest.raises(AuthorsLayoutError, match="not the authors' CaiT layout: "):
        SUBSTITUTED["cait_"](sd)
