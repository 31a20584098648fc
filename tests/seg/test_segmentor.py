"""Backbones, neck, heads and segmentor: the four Table 7 combinations on square and non-square
inputs, forward and backward; losses, inference modes and parameter counts."""

import pytest
import torch
import torch.nn.functional as F

from lkca.errors import ConfigError
from lkca.layers import LKCA, Attention
from lkca.seg import create_backbone, create_segmentor, segmentor_params
from lkca.seg.heads import FCNHead, SemanticFPN, UPerHead
from lkca.seg.neck import MultiLevelNeck

COMBOS = [(b, h) for b in ("vit_s_seg", "lkca_s_seg") for h in ("upernet", "fpn")]
SMALL = dict(num_classes=8, depth=4, dim=32, num_heads=2, head_channels=16)  # CPU-cheap widths


def test_backbones_are_vit_s_and_read_out_evenly_spaced_blocks():
    vit, lk = create_backbone("vit_s_seg"), create_backbone("lkca_s_seg")
    for bb, mixer in ((vit, Attention), (lk, LKCA)):
        assert bb.out_indices == (2, 5, 8, 11) and bb.out_channels == [384] * 4
        assert len(bb.vit.blocks) == 12 and all(isinstance(b.mixer, mixer) for b in bb.vit.blocks)
        assert bb.vit.blocks[0].mlp.fc1.out_features == 4 * 384
    assert {m.kernel_size for m in lk.modules() if isinstance(m, LKCA)} == {(63, 63)}
    assert lk.vit.blocks[0].mixer.num_heads == 1 and lk.vit.blocks[0].mixer.proj is None  # kernel per block
    assert isinstance(vit.vit.head, torch.nn.Identity) and vit.vit.cfg.num_classes == 0  # no classifier
    # MMSegmentation's ViT settings: stochastic depth rising linearly, truncated-normal init
    assert (vit.cfg.drop_path_schedule, vit.cfg.init) == ("linear", "trunc_normal")
    assert [b.drop_path.drop_prob for b in vit.vit.blocks][::11] == pytest.approx([0.0, 0.1])
    with pytest.raises(ConfigError, match="did you mean lkca_s_seg"):
        create_backbone("lkca_s")
    with pytest.raises(ConfigError, match="out_indices"):
        create_backbone("vit_s_seg", out_indices=(1, 3, 5, 7))


@pytest.mark.parametrize("size", [(512, 512), (384, 640)])
def test_backbone_and_neck_shapes(size):
    bb = create_backbone("lkca_s_seg", depth=4, dim=32, num_heads=2)
    feats = bb(torch.randn(1, 3, *size))
    h, w = size[0] // 16, size[1] // 16
    assert [tuple(f.shape) for f in feats] == [(1, 32, h, w)] * 4
    for resample in ("deconv", "bilinear"):
        outs = MultiLevelNeck([32] * 4, 32, resample=resample)(feats)
        assert [tuple(o.shape[-2:]) for o in outs] == [(h * 4, w * 4), (h * 2, w * 2), (h, w),
                                                       (h // 2, w // 2)]


@pytest.mark.parametrize("backbone, head", COMBOS)
def test_combo_trains_on_square_and_non_square_crops(backbone, head):
    torch.manual_seed(0)
    model = create_segmentor(backbone, head, **SMALL).train()
    for size in ((512, 512), (384, 640)):
        images = torch.randn(2, 3, *size)
        labels = torch.randint(0, 8, (2, *size))
        labels[:, :16] = 255
        model.zero_grad()
        losses = model.forward_train(images, labels)
        assert set(losses) == ({"loss", "loss_seg", "loss_aux"} if head == "upernet" else
                               {"loss", "loss_seg"})
        assert torch.isfinite(losses["loss"])
        losses["loss"].backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing  # every parameter is used: DDP needs no find_unused_parameters
        with torch.no_grad():
            assert model.eval()(images[:1]).shape == (1, 8, *size)
        model.train()


@pytest.mark.parametrize("backbone, head", COMBOS)
def test_full_size_combo_forward_512(backbone, head):
    torch.manual_seed(0)
    model = create_segmentor(backbone, head).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 512, 512))
    assert logits.shape == (1, 150, 512, 512) and torch.isfinite(logits).all()


def test_loss_ignores_255_and_weights_the_auxiliary_head():
    torch.manual_seed(0)
    model = create_segmentor("lkca_s_seg", "upernet", aux_weight=0.25, **SMALL).train()
    assert isinstance(model.head, UPerHead) and isinstance(model.aux_head, FCNHead)
    # MMSegmentation's upernet_vit-b16_ln_mln.py: the auxiliary head on the stride-32 level
    assert model.aux_head.loss_weight == 0.25 and model.aux_head.in_index == 3
    images = torch.randn(2, 3, 64, 64)
    all_ignored = model.forward_train(images, torch.full((2, 64, 64), 255))
    assert all_ignored["loss"].item() == 0.0  # MMSeg: summed over labelled pixels / all pixels
    for m in model.modules():  # make the loss deterministic
        if isinstance(m, torch.nn.Dropout2d):
            m.p = 0.0
    labels = torch.randint(0, 8, (2, 64, 64))
    losses = model.forward_train(images, labels)
    feats = model.extract(images)
    aux = F.interpolate(model.aux_head(feats), size=(64, 64), mode="bilinear", align_corners=False)
    assert losses["loss_aux"].item() == pytest.approx(0.25 * F.cross_entropy(aux, labels).item(), rel=1e-4)
    assert losses["loss"].item() == pytest.approx(losses["loss_seg"].item() + losses["loss_aux"].item())
    with pytest.raises(ValueError, match="at least 2 images"):
        model.forward_train(images[:1], labels[:1])


def test_whole_and_slide_inference():
    torch.manual_seed(0)
    model = create_segmentor("lkca_s_seg", "fpn", **SMALL).eval()
    assert isinstance(model.head, SemanticFPN)
    image = torch.randn(1, 3, 72, 100)  # not a multiple of 16: padded, then cropped back
    whole = model.predict_whole(image)
    assert whole.shape == (1, 8, 72, 100)
    assert torch.allclose(model.predict_slide(image, crop=128, stride=85), whole, atol=1e-5)
    slide = model.predict_slide(image, crop=64, stride=43, out_size=(36, 50))  # 2 x 2 windows
    assert slide.shape == (1, 8, 36, 50) and torch.isfinite(slide).all()
    assert model.predict_whole(image, out_size=(36, 50)).shape == (1, 8, 36, 50)


def test_bad_names_raise_config_errors():
    with pytest.raises(ConfigError, match="did you mean upernet"):
        create_segmentor("vit_s_seg", "uppernet")
    with pytest.raises(ConfigError, match="depth >= 4"):
        create_segmentor("vit_s_seg", "fpn", depth=2)


def test_param_counts_of_the_four_combos_against_table_7():
    rows = {(r["backbone"], r["head"]): r for r in segmentor_params(combos=COMBOS)}
    assert set(rows) == set(COMBOS)  # the comparison backbones: tests/seg/test_seg_baselines.py
    for r in rows.values():
        assert r["params"] == sum(r[f"{k}_params"] for k in ("backbone", "neck", "head", "aux"))
    vit, lk = rows["vit_s_seg", "upernet"], rows["lkca_s_seg", "upernet"]
    # LKCA-S drops each block's qkv + output projection (4 * 384^2 + 4 * 384) and adds one 63x63
    # kernel: 7.049M, Table 7's FPN pair (37.23M - 30.18M = 7.05M; docs/block-readings.md)
    assert vit["backbone_params"] - lk["backbone_params"] == 12 * (4 * 384 * 384 + 4 * 384 - 63 * 63)
    # the bilinear neck (the default): UperNet +0.6% / +0.7%; exact counts: tests/seg/test_seg_params.py
    assert 1.0 < vit["ratio"] < 1.01 and 1.0 < lk["ratio"] < 1.01
    assert 0.85 < rows["vit_s_seg", "fpn"]["ratio"] < 0.88  # FPN: the paper's head is larger


def test_backbones_are_registered_with_their_keywords_declared():
    import inspect

    from lkca.seg.backbone import (
        BACKBONES,
        HIERARCHICAL,
        ViTBackbone,
        backbone_keys,
        register_backbone,
    )
    assert set(BACKBONES) == {"vit_s_seg", "lkca_s_seg", *HIERARCHICAL}
    assert set(HIERARCHICAL) == {"resnet50_seg", "swin_s_seg", "twins_pcpvt_s_seg"}
    assert {"dim", "depth", "mixers", "kernel_heads", "out_indices"} <= backbone_keys("lkca_s_seg")
    assert "num_classes" not in backbone_keys("vit_s_seg")  # the segmentor's, not the backbone's
    for name in HIERARCHICAL:  # the declaration is the constructor's keywords (+ img_size)
        cls = type(create_backbone(name, depths=(1, 1, 1, 1)))
        assert backbone_keys(name) == set(inspect.signature(cls).parameters) | {"img_size"}
    with pytest.raises(ValueError, match="registered twice"):
        register_backbone("vit_s_seg", keys=())(lambda: ViTBackbone)


@pytest.mark.parametrize("reading", [{"mixers": "attn_lkca", "kernel_heads": 1},
                                     {"mixers": "attn_lkca"}, {"kernel_heads": None}])
def test_lkca_s_takes_any_block_reading(reading):
    """docs/block-readings.md: the other readings of the block through model_args."""
    torch.manual_seed(0)
    model = create_segmentor("lkca_s_seg", "fpn", **SMALL, **reading).train()
    losses = model.forward_train(torch.randn(2, 3, 64, 64), torch.randint(0, 8, (2, 64, 64)))
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    block = model.backbone.vit.blocks[0]
    assert hasattr(block, "attn") == (reading.get("mixers") == "attn_lkca")


def test_a_segmentor_refuses_uint8_images_naming_the_conversion():
    from lkca.errors import InvalidArgumentError

    model = create_segmentor("lkca_s_seg", "fpn", num_classes=3, head_channels=8, img_size=64,
                             depth=4, dim=16, num_heads=2)
    images = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    for call in (lambda: model(images), lambda: model.forward_train(images, torch.zeros(1, 64, 64).long())):
        with pytest.raises(InvalidArgumentError, match="Segmentor: expected floating-point images"):
            call()
