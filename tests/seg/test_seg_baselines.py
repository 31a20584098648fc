"""Table 7's comparison backbones (ResNet-50, Swin-S, Twins-PCPVT-S): paper architectures, four
feature maps at strides 4, 8, 16, 32 on square and non-square inputs, forward and backward, the
segmentors without a neck, and parameter counts against the paper's Table 7."""

import json

import pytest
import torch
from torch import nn

from lkca.errors import ConfigError
from lkca.models.baselines.swin import SwinBlock
from lkca.seg import create_backbone, create_segmentor, segmentor_params
from lkca.seg.backbone import HIERARCHICAL
from lkca.seg.config import SegConfig
from lkca.seg.resnet import Bottleneck
from lkca.seg.segmentor import PAPER_PARAMS
from lkca.seg.twins_pcpvt import PEG, GlobalSubsampledAttention

NAMES = ["resnet50_seg", "swin_s_seg", "twins_pcpvt_s_seg"]
CHANNELS = {"resnet50_seg": [256, 512, 1024, 2048], "swin_s_seg": [96, 192, 384, 768],
            "twins_pcpvt_s_seg": [64, 128, 320, 512]}
# Table 7 rows of these backbones (the paper gives no FPN row for ResNet-50 or Swin-S).
COMBOS = [("resnet50_seg", "upernet"), ("swin_s_seg", "upernet"),
          ("twins_pcpvt_s_seg", "upernet"), ("twins_pcpvt_s_seg", "fpn")]
# Ours / paper. Within +-5% except two rows the standard architectures cannot reach:
# - Swin-S + UperNet: the paper's 51.90M is barely above Swin-S alone (48.84M); MMSegmentation's
#   UperNet (512 channels) on Swin-S's 96..768 channels adds 32.4M -> 81.26M (+56.6%), the figure
#   MMSegmentation's model zoo lists (81M) for the same model.
# - Twins-PCPVT-S + FPN: the semantic FPN (256-channel neck, 128-channel head) on PCPVT-S adds
#   4.27M -> 27.86M (-16.7%); the paper's 33.43M implies a 9.8M head (ViT-S + FPN is short by
#   8.5% too, tests/seg/test_segmentor.py).
EXPECTED_RATIO = {("resnet50_seg", "upernet"): 1.037, ("swin_s_seg", "upernet"): 1.566,
                  ("twins_pcpvt_s_seg", "upernet"): 1.015, ("twins_pcpvt_s_seg", "fpn"): 0.833}


@pytest.fixture(scope="module")
def backbones():
    torch.manual_seed(0)
    return {name: create_backbone(name) for name in NAMES}


def test_registered_and_in_table_7():
    assert set(HIERARCHICAL) == set(NAMES)
    assert set(COMBOS) <= set(PAPER_PARAMS)
    for name in NAMES:  # what `lkca seg train --backbone NAME` validates
        assert SegConfig(backbone=name).backbone == name
    # model_args are checked against the chosen backbone's own keywords
    assert SegConfig(backbone="swin_s_seg", model_args={"depths": [2, 2, 2, 2]}).model_args
    with pytest.raises(ConfigError, match="unknown model_args key 'depth'; did you mean 'depths'"):
        SegConfig(backbone="resnet50_seg", model_args={"depth": 4})


def test_architectures_are_the_papers(backbones):
    res = backbones["resnet50_seg"]
    assert [len(s) for s in res.stages] == [3, 4, 6, 3]
    assert all(isinstance(b, Bottleneck) for s in res.stages for b in s)
    assert [s[0].body[0].out_channels for s in res.stages] == [64, 128, 256, 512]  # bottleneck widths
    assert [m.kernel_size for m in res.stem if isinstance(m, nn.Conv2d)] == [(3, 3)] * 3  # V1c stem
    assert all(not b.body[-1].weight.any() for s in res.stages for b in s)  # zero-init last BN
    swin = backbones["swin_s_seg"]
    assert [len(s) for s in swin.stages] == [2, 2, 18, 2]
    blocks = [s[0] for s in swin.stages]
    assert all(isinstance(b, SwinBlock) for s in swin.stages for b in s)
    assert [b.attn.num_heads for b in blocks] == [3, 6, 12, 24]
    assert {b.window_size for s in swin.stages for b in s} == {7}
    assert [b.shift for b in swin.stages[2][:2]] == [0, 3]
    assert blocks[0].mlp.fc1.out_features == 4 * 96
    assert swin.stages[-1][-1].drop_path.drop_prob == pytest.approx(0.3)
    pc = backbones["twins_pcpvt_s_seg"]
    assert [len(s) for s in pc.stages] == [3, 4, 6, 3]
    attns = [s[0].attn for s in pc.stages]
    assert all(isinstance(a, GlobalSubsampledAttention) for a in attns)
    assert [a.num_heads for a in attns] == [1, 2, 5, 8]
    assert [a.sr.stride[0] if a.sr is not None else 1 for a in attns] == [8, 4, 2, 1]
    assert [s[0].mlp.fc1.out_features // c for s, c in zip(pc.stages, CHANNELS["twins_pcpvt_s_seg"])] \
        == [8, 8, 4, 4]
    assert len(pc.pegs) == 4 and all(isinstance(p, PEG) for p in pc.pegs)
    assert pc.stages[-1][-1].drop_path.drop_prob == pytest.approx(0.2)
    assert [p.proj.groups for p in pc.pegs] == CHANNELS["twins_pcpvt_s_seg"]  # depthwise 3x3
    for name, bb in backbones.items():
        assert bb.out_channels == CHANNELS[name]


@pytest.mark.parametrize("size", [(64, 64), (64, 96)])
@pytest.mark.parametrize("name", NAMES)
def test_four_strides_forward_backward(backbones, name, size):
    bb = backbones[name]
    bb.train()
    bb.zero_grad()
    feats = bb(torch.randn(1, 3, *size))
    H, W = size
    assert [tuple(f.shape) for f in feats] == [
        (1, c, H // s, W // s) for c, s in zip(CHANNELS[name], (4, 8, 16, 32))]
    sum(f.square().mean() for f in feats).backward()
    assert all(p.grad is not None for p in bb.parameters())  # every parameter reaches the output


@pytest.mark.parametrize("backbone,head", COMBOS)
def test_segmentor_has_no_neck_and_trains(backbone, head):
    torch.manual_seed(0)
    model = create_segmentor(backbone, head, num_classes=8, head_channels=16)
    assert model.neck is None and model.size_divisor == 32
    images, labels = torch.randn(2, 3, 64, 96), torch.randint(0, 8, (2, 64, 96))
    losses = model.forward_train(images, labels)
    assert set(losses) == ({"loss", "loss_seg", "loss_aux"} if head == "upernet" else {"loss", "loss_seg"})
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"])
    model.eval()
    assert model.predict_whole(torch.randn(1, 3, 50, 70)).shape == (1, 8, 50, 70)  # padded to 32s


@pytest.mark.parametrize("backbone,head", COMBOS)
def test_params_against_table_7(backbone, head):
    (row,) = segmentor_params(combos=[(backbone, head)])
    assert row["neck_params"] == 0
    assert row["ratio"] == pytest.approx(EXPECTED_RATIO[backbone, head], abs=0.002)
    if (backbone, head) in (("resnet50_seg", "upernet"), ("twins_pcpvt_s_seg", "upernet")):
        assert 0.95 <= row["ratio"] <= 1.05


def test_backbone_param_counts():
    # the backbones alone, as the published classification models without their classifier
    counts = {name: sum(p.numel() for p in create_backbone(name).parameters()) for name in NAMES}
    assert counts == {"resnet50_seg": 23_527_264, "swin_s_seg": 48_838_602,
                      "twins_pcpvt_s_seg": 23_592_192}
    assert create_backbone("resnet50_seg", deep_stem=False).stem[0].kernel_size == (7, 7)


def test_lkca_seg_train_accepts_a_comparison_backbone(write_pair, tmp_path):
    from lkca.cli import main

    root = tmp_path / "data" / "ADEChallengeData2016"
    for i in range(2):
        write_pair(root, "training", f"ADE_train_{i:08d}", (64, 80), seed=i)
    write_pair(root, "validation", "ADE_val_00000000", (40, 56), seed=5)
    config = tmp_path / "tiny.yaml"
    config.write_text("model_args: {head_channels: 16}\ncrop_size: 64\nimg_scale: [128, 64]\n"
                      "batch_size: 2\nwarmup_iters: 1\nslide_stride: 32\ndevice: cpu\n")
    out = tmp_path / "run"
    assert main(["seg", "train", "--config", str(config), "--data-dir", str(tmp_path / "data"),
                 "--backbone", "twins_pcpvt_s_seg", "--head", "fpn", "--iters", "2",
                 "--eval-interval", "2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["backbone"], summary["head"], summary["iters"]) == ("twins_pcpvt_s_seg", "fpn", 2)


def test_macs_at_512_against_table_7():
    from lkca.analysis.paper_report import profile_segmentor

    paper = {("resnet50_seg", "upernet"): 238e9, ("swin_s_seg", "upernet"): 231e9,
             ("twins_pcpvt_s_seg", "upernet"): 234e9, ("twins_pcpvt_s_seg", "fpn"): 49.74e9}
    ours = {c: profile_segmentor(*c, {}, 512)["macs"] for c in COMBOS}
    ratio = {c: ours[c] / paper[c] for c in COMBOS}
    # the UperNet rows of ResNet-50 and PCPVT-S agree with the paper's Flops (its "Flops" are MACs)
    assert ratio == pytest.approx({("resnet50_seg", "upernet"): 0.999, ("swin_s_seg", "upernet"): 1.128,
                                   ("twins_pcpvt_s_seg", "upernet"): 0.999,
                                   ("twins_pcpvt_s_seg", "fpn"): 0.895}, abs=0.002)


def test_save_pretrained_round_trip(tmp_path):
    import lkca

    model = create_segmentor("twins_pcpvt_s_seg", "fpn", num_classes=5, head_channels=8,
                             depths=[1, 1, 1, 1]).eval()
    model.save_pretrained(tmp_path)
    loaded = lkca.from_pretrained(tmp_path).eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(model(x), loaded(x))
