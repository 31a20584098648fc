"""Checkpoints in the authors' key layout (Twins-SVT, XCiT, RegionViT; also RvT, CrossViT)
convert to ours, load, and give the logits of the model they came from.

Each authors' state dict is built here from the names and shapes of the authors' files
(CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet ``models/twins_svt.py``,
``xcit.py``, ``regionvit.py``) with random values, and the reference logits are computed from it
by the documented math of those files, written here with functional ops.
"""

import pytest
import torch
import torch.nn.functional as F

import lkca
from lkca.authors import crossvit, regionvit, rvt, twins, xcit
from lkca.errors import AuthorsLayoutError, CheckpointError, UserError

# the families whose converters rename each key by one rule (lkca.authors.rename)
RENAMED = {**rvt.LAYOUTS, **xcit.LAYOUTS, **crossvit.LAYOUTS, **regionvit.LAYOUTS, **twins.LAYOUTS}


def _random(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.2 for k, s in shapes.items()}


def _check_layout(authors, ours, reshaped=lambda key: False):
    """Every authors' tensor sits, values unchanged, at exactly one of our keys; only the keys
    ``reshaped`` says change shape (and keep their values in order)."""
    assert sum(t.numel() for t in authors.values()) == sum(t.numel() for t in ours.values())
    for key, t in authors.items():
        hits = [k for k, o in ours.items() if o.numel() == t.numel()
                and torch.equal(o.reshape(-1), t.reshape(-1))]
        assert len(hits) == 1, (key, hits)
        if not reshaped(key):
            assert ours[hits[0]].shape == t.shape, key


def _attend(q, k, v, scale):
    return torch.einsum("...ij,...jd->...id", (torch.einsum("...id,...jd->...ij", q, k) * scale)
                        .softmax(-1), v)


# ---- Twins-SVT: models/twins_svt.py ---------------------------------------------------------

TWINS = dict(dims=(8, 8, 16, 16), depths=(1, 1, 2, 1), heads=8, dim_head=4, classes=5)


def twins_shapes(dims, depths, heads, dim_head, classes):
    inner, shapes, c_in = heads * dim_head, {}, 3

    def block(prefix, d, local):
        parts = ([("local", 0), ("ff", 1)] if local else []) + [("global", 2), ("ff", 3)]
        for kind, j in parts:
            p = f"{prefix}.{j}.fn"
            shapes.update({f"{p}.norm.g" if kind != "ff" else f"{p}.net.0.g": (1, d, 1, 1),
                           f"{p}.norm.b" if kind != "ff" else f"{p}.net.0.b": (1, d, 1, 1)})
            if kind == "ff":
                shapes.update({f"{p}.net.1.weight": (4 * d, d, 1, 1), f"{p}.net.1.bias": (4 * d,),
                               f"{p}.net.4.weight": (d, 4 * d, 1, 1), f"{p}.net.4.bias": (d,)})
            else:
                k = 1 if kind == "local" else 3
                shapes.update({f"{p}.to_q.weight": (inner, d, 1, 1),
                               f"{p}.to_kv.weight": (2 * inner, d, k, k),
                               f"{p}.to_out.0.weight": (d, inner, 1, 1), f"{p}.to_out.0.bias": (d,)})

    for s, (d, n) in enumerate(zip(dims, depths)):
        last = s == len(dims) - 1
        shapes.update({f"layers.{s}.0.proj.0.g": (1, 4 * c_in, 1, 1),
                       f"layers.{s}.0.proj.0.b": (1, 4 * c_in, 1, 1),
                       f"layers.{s}.0.proj.1.weight": (d, 4 * c_in, 1, 1),
                       f"layers.{s}.0.proj.1.bias": (d,),
                       f"layers.{s}.0.proj.2.g": (1, d, 1, 1), f"layers.{s}.0.proj.2.b": (1, d, 1, 1),
                       f"layers.{s}.2.proj.fn.weight": (d, 1, 3, 3), f"layers.{s}.2.proj.fn.bias": (d,)})
        block(f"layers.{s}.1.layers.0", d, not last)
        for j in range(n):
            block(f"layers.{s}.3.layers.{j}", d, not last)
        c_in = d
    shapes.update({"layers.6.weight": (classes, dims[-1]), "layers.6.bias": (classes,)})
    return shapes


def twins_reference(sd, x, dims, depths, heads, dim_head, classes):
    """The authors' TwinsSVT forward (window 8, global k 3) from their state dict."""

    def ln(x, p):
        mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
        return (x - mean) / (var + 1e-5).sqrt() * sd[f"{p}.g"] + sd[f"{p}.b"]

    def conv(x, p, bias=True, **kw):
        return F.conv2d(x, sd[f"{p}.weight"], sd[f"{p}.bias"] if bias else None, **kw)

    def heads_of(t):  # b (h d) x y -> b h (x y) d
        return t.reshape(t.shape[0], heads, dim_head, -1).transpose(-2, -1)

    def local_attn(x, p, w=8):
        x = ln(x, f"{p}.norm")
        B, C, H, W = x.shape
        win = x.reshape(B, C, H // w, w, W // w, w).permute(0, 2, 4, 1, 3, 5).reshape(-1, C, w, w)
        q = heads_of(conv(win, f"{p}.to_q", bias=False))
        k, v = map(heads_of, conv(win, f"{p}.to_kv", bias=False).chunk(2, 1))
        out = _attend(q, k, v, dim_head ** -0.5).transpose(-2, -1)  # (B * wins, h, d, w * w)
        out = out.reshape(B, H // w, W // w, heads * dim_head, w, w).permute(0, 3, 1, 4, 2, 5)
        return conv(out.reshape(B, -1, H, W), f"{p}.to_out.0")

    def global_attn(x, p):
        x = ln(x, f"{p}.norm")
        B, C, H, W = x.shape
        q = heads_of(conv(x, f"{p}.to_q", bias=False))
        k, v = map(heads_of, conv(x, f"{p}.to_kv", bias=False, stride=3).chunk(2, 1))
        out = _attend(q, k, v, dim_head ** -0.5).transpose(-2, -1).reshape(B, -1, H, W)
        return conv(out, f"{p}.to_out.0")

    def ff(x, p):
        return conv(F.gelu(conv(ln(x, f"{p}.net.0"), f"{p}.net.1")), f"{p}.net.4")

    def transformer(x, prefix, n, local):
        for j in range(n):
            p = f"{prefix}.layers.{j}"
            if local:
                x = x + local_attn(x, f"{p}.0.fn")
                x = x + ff(x, f"{p}.1.fn")
            x = x + global_attn(x, f"{p}.2.fn")
            x = x + ff(x, f"{p}.3.fn")
        return x

    for s, n in enumerate(depths):
        B, C, H, W = x.shape
        x = x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, 4 * C, H // 2,
                                                                                    W // 2)
        x = ln(conv(ln(x, f"layers.{s}.0.proj.0"), f"layers.{s}.0.proj.1"), f"layers.{s}.0.proj.2")
        local = s < len(depths) - 1
        x = transformer(x, f"layers.{s}.1", 1, local)
        x = x + conv(x, f"layers.{s}.2.proj.fn", padding=1, groups=x.shape[1])
        x = transformer(x, f"layers.{s}.3", n, local)
    return F.linear(x.mean((2, 3)), sd["layers.6.weight"], sd["layers.6.bias"])


def test_twins_svt_checkpoint_round_trips():
    authors = _random(twins_shapes(**TWINS))
    ours = RENAMED["twins_svt_"](authors)
    _check_layout(authors, ours, reshaped=lambda k: k.endswith((".g", ".b")))
    model = lkca.create_model("twins_svt_s", dims=TWINS["dims"], depths=TWINS["depths"],
                              dim_head=TWINS["dim_head"], num_classes=TWINS["classes"]).eval()
    model.load_state_dict(ours)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), twins_reference(authors, x, **TWINS))


# ---- XCiT: models/xcit.py -------------------------------------------------------------------

XCIT = dict(img=32, dim=12, depth=2, cls_depth=1, heads=2, dim_head=6, mlp=10, classes=5)


def xcit_shapes(img, dim, depth, cls_depth, heads, dim_head, mlp, classes):
    p, inner = img // 8, heads * dim_head
    pix = 3 * p * p

    def lin(name, o, i, bias=True):
        return {f"{name}.weight": (o, i), **({f"{name}.bias": (o,)} if bias else {})}

    def norm(name, d):
        return {f"{name}.weight": (d,), f"{name}.bias": (d,)}

    def ff(prefix):
        return {**norm(f"{prefix}.net.0", dim), **lin(f"{prefix}.net.1", mlp, dim),
                **lin(f"{prefix}.net.4", dim, mlp)}

    shapes = {**norm("to_patch_embedding.1", pix), **lin("to_patch_embedding.2", dim, pix),
              **norm("to_patch_embedding.3", dim), "pos_embedding": (1, 64, dim),
              "cls_token": (dim,), **norm("final_norm", dim), **norm("mlp_head.0", dim),
              **lin("mlp_head.1", classes, dim)}
    for i in range(depth):
        p = f"xcit_transformer.layers.{i}"
        shapes.update({f"{p}.{j}.scale": (dim,) for j in range(3)})
        shapes.update({**norm(f"{p}.0.fn.norm", dim), **lin(f"{p}.0.fn.to_qkv", 3 * inner, dim, False),
                       f"{p}.0.fn.temperature": (heads, 1, 1), **lin(f"{p}.0.fn.to_out.0", dim, inner),
                       **norm(f"{p}.1.fn.net.0", dim), f"{p}.1.fn.net.2.weight": (dim, 1, 3, 3),
                       f"{p}.1.fn.net.2.bias": (dim,), **norm(f"{p}.1.fn.net.3", dim),
                       f"{p}.1.fn.net.3.running_mean": (dim,), f"{p}.1.fn.net.3.running_var": (dim,),
                       f"{p}.1.fn.net.5.weight": (dim, 1, 3, 3), f"{p}.1.fn.net.5.bias": (dim,),
                       **ff(f"{p}.2.fn")})
    for i in range(cls_depth):
        p = f"cls_transformer.layers.{i}"
        shapes.update({f"{p}.0.scale": (dim,), f"{p}.1.scale": (dim,), **norm(f"{p}.0.fn.norm", dim),
                       **lin(f"{p}.0.fn.to_q", inner, dim, False),
                       **lin(f"{p}.0.fn.to_kv", 2 * inner, dim, False),
                       **lin(f"{p}.0.fn.to_out.0", dim, inner), **ff(f"{p}.1.fn")})
    return shapes


def xcit_reference(sd, x, img, dim, depth, cls_depth, heads, dim_head, mlp, classes):
    """The authors' XCiT forward (eval: BatchNorm on running statistics) from their state dict."""

    def ln(t, p):
        return F.layer_norm(t, t.shape[-1:], sd[f"{p}.weight"], sd[f"{p}.bias"])

    def lin(t, p):
        return F.linear(t, sd[f"{p}.weight"], sd.get(f"{p}.bias"))

    def ff(t, p):
        return lin(F.gelu(lin(ln(t, f"{p}.net.0"), f"{p}.net.1")), f"{p}.net.4")

    def split(t):  # b n (h d) -> b h n d
        return t.reshape(t.shape[0], t.shape[1], heads, dim_head).transpose(1, 2)

    B, p = x.shape[0], img // 8
    t = x.reshape(B, 3, 8, p, 8, p).permute(0, 2, 4, 3, 5, 1).reshape(B, 64, 3 * p * p)
    t = ln(lin(ln(t, "to_patch_embedding.1"), "to_patch_embedding.2"), "to_patch_embedding.3")
    t = t + sd["pos_embedding"]
    for i in range(depth):
        pre = f"xcit_transformer.layers.{i}"
        q, k, v = (split(u).transpose(-2, -1)  # b h d n
                   for u in lin(ln(t, f"{pre}.0.fn.norm"), f"{pre}.0.fn.to_qkv").chunk(3, -1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        out = _attend(q, k, v, sd[f"{pre}.0.fn.temperature"].exp())  # b h d n
        out = out.permute(0, 3, 1, 2).reshape(B, 64, heads * dim_head)
        t = t + lin(out, f"{pre}.0.fn.to_out.0") * sd[f"{pre}.0.scale"]
        m = ln(t, f"{pre}.1.fn.net.0").transpose(1, 2).reshape(B, dim, 8, 8)
        m = F.conv2d(m, sd[f"{pre}.1.fn.net.2.weight"], sd[f"{pre}.1.fn.net.2.bias"], padding=1,
                     groups=dim)
        bn = f"{pre}.1.fn.net.3"
        m = F.batch_norm(m, sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"], sd[f"{bn}.weight"],
                         sd[f"{bn}.bias"])
        m = F.conv2d(F.gelu(m), sd[f"{pre}.1.fn.net.5.weight"], sd[f"{pre}.1.fn.net.5.bias"],
                     padding=1, groups=dim)
        t = t + m.flatten(2).transpose(1, 2) * sd[f"{pre}.1.scale"]
        t = t + ff(t, f"{pre}.2.fn") * sd[f"{pre}.2.scale"]
    t = ln(t, "final_norm")
    cls = sd["cls_token"].expand(B, 1, dim)
    for i in range(cls_depth):
        pre = f"cls_transformer.layers.{i}"
        c = ln(cls, f"{pre}.0.fn.norm")
        k, v = lin(torch.cat([c, t], 1), f"{pre}.0.fn.to_kv").chunk(2, -1)
        out = _attend(split(lin(c, f"{pre}.0.fn.to_q")), split(k), split(v), dim_head ** -0.5)
        cls = cls + lin(out.transpose(1, 2).reshape(B, 1, -1), f"{pre}.0.fn.to_out.0") \
            * sd[f"{pre}.0.scale"]
        cls = cls + ff(cls, f"{pre}.1.fn") * sd[f"{pre}.1.scale"]
    return lin(ln(cls[:, 0], "mlp_head.0"), "mlp_head.1")


def test_xcit_checkpoint_round_trips():
    authors = _random(xcit_shapes(**XCIT), seed=1)
    authors = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in authors.items()}
    authors = {**authors, **{k.replace("running_mean", "num_batches_tracked"): torch.tensor(3)
                             for k in authors if k.endswith("running_mean")}}
    ours = RENAMED["xcit_"](authors)
    _check_layout({k: v for k, v in authors.items() if "num_batches" not in k},
                  {k: v for k, v in ours.items() if "num_batches" not in k})
    c = XCIT
    model = lkca.create_model("xcit_t", img_size=c["img"], dim=c["dim"], depth=c["depth"],
                              cls_depth=c["cls_depth"], heads=c["heads"], dim_head=c["dim_head"],
                              mlp_dim=c["mlp"], num_classes=c["classes"]).eval()
    model.load_state_dict(ours)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), xcit_reference(authors, x, **XCIT))


# ---- RegionViT: models/regionvit.py (layout and shapes; its forward is the stage tests') -----

def regionvit_shapes(img, dims, depths, classes):
    window, region = img // 8, (img // 16) * (img // 8)
    shapes = {"local_encoder.weight": (dims[0], 3, 8, 8), "local_encoder.bias": (dims[0],),
              "region_encoder.1.weight": (dims[0], 3 * region**2, 1, 1),
              "region_encoder.1.bias": (dims[0],), "to_logits.1.weight": (dims[-1],),
              "to_logits.1.bias": (dims[-1],), "to_logits.2.weight": (classes, dims[-1]),
              "to_logits.2.bias": (classes,)}
    for i, (d, n) in enumerate(zip(dims, depths)):
        if i:
            shapes.update({f"layers.{i}.0.conv.weight": (d, dims[i - 1], 3, 3),
                           f"layers.{i}.0.conv.bias": (d,)})
        shapes[f"layers.{i}.2.local_rel_pos_bias.weight"] = ((2 * window - 1) ** 2, 4)
        for j in range(n):
            p = f"layers.{i}.2.layers.{j}"
            shapes.update({f"{p}.0.norm.weight": (d,), f"{p}.0.norm.bias": (d,),
                           f"{p}.0.to_qkv.weight": (3 * 128, d), f"{p}.0.to_out.0.weight": (d, 128),
                           f"{p}.0.to_out.0.bias": (d,), f"{p}.1.0.weight": (d,), f"{p}.1.0.bias": (d,),
                           f"{p}.1.1.weight": (4 * d, d), f"{p}.1.1.bias": (4 * d,),
                           f"{p}.1.4.weight": (d, 4 * d), f"{p}.1.4.bias": (d,)})
    return shapes


@pytest.mark.parametrize("img", [32, 64])
def test_regionvit_row_checkpoint_converts_with_every_tensor_in_place(img):
    dims, depths = (48, 72, 108, 112), (1, 1, 2, 1)  # create_model.py 'regionvit-t'
    authors = _random(regionvit_shapes(img, dims, depths, 10))
    ours = RENAMED["regionvit_"](authors)
    _check_layout(authors, ours)
    model = lkca.create_model("regionvit_t", img_size=img, num_classes=10).eval()
    model.load_state_dict(ours)
    assert model(torch.randn(1, 3, img, img)).shape == (1, 10)


# ---- refusals -------------------------------------------------------------------------------

def test_foreign_missing_and_misshapen_tensors_are_refused_in_one_line():
    assert issubclass(AuthorsLayoutError, CheckpointError) and issubclass(CheckpointError, UserError)
    authors = _random(twins_shapes(**TWINS))
    with pytest.raises(AuthorsLayoutError, match="'layers.0.9.x' is not in the authors' Twins-SVT"):
        RENAMED["twins_svt_"]({**authors, "layers.0.9.x": torch.zeros(1)})
    missing = dict(authors)
    del missing["layers.1.3.layers.0.2.fn.to_kv.weight"]
    with pytest.raises(AuthorsLayoutError, match="lacks 'stages.1.blocks.0.global_attn.kv.weight'"):
        RENAMED["twins_svt_"](missing)
    bad = {**authors, "layers.2.0.proj.1.bias": torch.zeros(7)}
    with pytest.raises(AuthorsLayoutError, match=r"'stages.2.merge.proj.bias' has shape \(7,\)"):
        RENAMED["twins_svt_"](bad)
    flat = {**authors, "layers.0.0.proj.0.g": torch.ones(12)}
    with pytest.raises(AuthorsLayoutError, match=r"the authors' is \(1, C, 1, 1\)"):
        RENAMED["twins_svt_"](flat)
    with pytest.raises(AuthorsLayoutError, match="not in the authors' XCiT layout"):
        RENAMED["xcit_"](authors)  # another family's checkpoint
    cross = _random(crossvit_shapes(32, 16, 1, 1, 3))
    odd = "multi_scale_encoder.layers.0.0.layers.0.2.weight"  # a third part in an encoder block
    with pytest.raises(AuthorsLayoutError, match=f"'{odd}' is not in the authors' CrossViT"):
        RENAMED["crossvit_"]({**cross, odd: torch.zeros(1)})


def test_rvt_row_converts_from_its_authors_layout():
    """RvT (its rotary buffer checked and dropped): our row's tensors renamed to the authors' keys
    convert back unchanged."""
    rvt = lkca.create_model("rvt_t", img_size=32, num_classes=10)
    back = {
        "transformer.pos_emb.scales": torch.linspace(1.0, 16.0, 16),
        **{_rvt_authors_key(k): v for k, v in rvt.state_dict().items()},
    }
    converted = RENAMED["rvt_"](back)
    assert converted.keys() == rvt.state_dict().keys()
    assert all(torch.equal(converted[k], v) for k, v in rvt.state_dict().items())
    with pytest.raises(AuthorsLayoutError, match="linspace"):
        RENAMED["rvt_"]({**back, "transformer.pos_emb.scales": torch.linspace(1.0, 16.0, 16)
                           + torch.arange(16) % 2})


def crossvit_shapes(img, dim, cross_depth, depth, classes):
    """models/crossvit.py's names for equal branch widths (no ProjectInOut linears), 8 x 16 heads,
    encoders of 1 and 4 blocks, MLP width = dim (create_model.py's rows)."""
    p, inner = img // 8, 128
    pix = 3 * p * p

    def attn(pre):
        return {f"{pre}.norm.weight": (dim,), f"{pre}.norm.bias": (dim,),
                f"{pre}.to_q.weight": (inner, dim), f"{pre}.to_kv.weight": (2 * inner, dim),
                f"{pre}.to_out.0.weight": (dim, inner), f"{pre}.to_out.0.bias": (dim,)}

    shapes = {}
    for b in ("sm", "lg"):
        e = f"{b}_image_embedder"
        shapes.update({f"{e}.to_patch_embedding.1.weight": (pix,),
                       f"{e}.to_patch_embedding.1.bias": (pix,),
                       f"{e}.to_patch_embedding.2.weight": (dim, pix),
                       f"{e}.to_patch_embedding.2.bias": (dim,),
                       f"{e}.to_patch_embedding.3.weight": (dim,),
                       f"{e}.to_patch_embedding.3.bias": (dim,), f"{e}.pos_embedding": (1, 65, dim),
                       f"{e}.cls_token": (1, 1, dim), f"{b}_mlp_head.0.weight": (dim,),
                       f"{b}_mlp_head.0.bias": (dim,), f"{b}_mlp_head.1.weight": (classes, dim),
                       f"{b}_mlp_head.1.bias": (classes,)})
    for i in range(depth):
        pre = f"multi_scale_encoder.layers.{i}"
        for part, blocks in ((0, 1), (1, 4)):
            shapes.update({f"{pre}.{part}.norm.weight": (dim,), f"{pre}.{part}.norm.bias": (dim,)})
            for j in range(blocks):
                f = f"{pre}.{part}.layers.{j}.1.net"
                shapes.update({**attn(f"{pre}.{part}.layers.{j}.0"), f"{f}.0.weight": (dim,),
                               f"{f}.0.bias": (dim,), f"{f}.1.weight": (dim, dim),
                               f"{f}.1.bias": (dim,), f"{f}.4.weight": (dim, dim),
                               f"{f}.4.bias": (dim,)})
        for k in range(cross_depth):
            shapes.update({**attn(f"{pre}.2.layers.{k}.0.fn"), **attn(f"{pre}.2.layers.{k}.1.fn")})
    return shapes


@pytest.mark.parametrize("img", [32, 64])
def test_crossvit_row_checkpoint_converts_with_every_tensor_in_place(img):
    authors = _random(crossvit_shapes(img, 102, 1, 2, 10))  # create_model.py 'crossvit-t'
    ours = RENAMED["crossvit_"](authors)
    _check_layout(authors, ours)
    model = lkca.create_model("crossvit_t", img_size=img, num_classes=10).eval()
    model.load_state_dict(ours)
    assert model(torch.randn(1, 3, img, img)).shape == (1, 10)


def _rvt_authors_key(key):
    """Our RvT key -> the authors' (the inverse of the documented renaming)."""
    if key == "cls_token":
        return key
    for ours, theirs in [("patch_embed.", "to_patch_embedding.1."), ("norm.", "mlp_head.0."),
                         ("head.", "mlp_head.1.")]:
        if key.startswith(ours):
            return theirs + key[len(ours):]
    i, rest = key.split(".")[1], ".".join(key.split(".")[2:])
    for ours, theirs in [("attn.norm.", "0.norm."), ("attn.q.depthwise.", "0.to_q.conv.net.0."),
                         ("attn.q.pointwise.", "0.to_q.conv.net.1."),
                         ("attn.q.cls_proj.", "0.to_q.cls_proj."), ("attn.kv.", "0.to_kv."),
                         ("attn.proj.", "0.to_out.0."), ("ff.norm.", "1.net.0."),
                         ("ff.fc1.", "1.net.1."), ("ff.fc2.", "1.net.4.")]:
        if rest.startswith(ours):
            return f"transformer.layers.{i}.{theirs}{rest[len(ours):]}"
    raise AssertionError(key)
