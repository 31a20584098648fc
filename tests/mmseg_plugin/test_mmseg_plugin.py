"""The MMSegmentation plugin: registration, scope, backbone/neck build, the configs/mmseg files.

Needs mmengine (the mmseg extra, also in the test extra). MMSegmentation itself needs mmcv with
compiled ops and is not installed here, so the registry is the mmengine fallback of lkca.mmseg;
the decode heads of the configs (MMSegmentation's UPerHead, FCNHead, FPN, FPNHead) are checked
as values, not built.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

mmengine = pytest.importorskip(
    "mmengine", reason="the MMSegmentation plugin needs mmengine: pip install -e '.[mmseg]'")

from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS as ROOT  # noqa: E402
from mmengine.registry import DefaultScope, init_default_scope  # noqa: E402

import lkca  # noqa: E402
from lkca.mmseg import MODELS, USING_MMSEG, LKCAMultiLevelNeck, LKCAViTBackbone  # noqa: E402
from lkca.seg.backbone import create_backbone  # noqa: E402

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "mmseg").glob("*.py"))
TINY = {"img_size": 64, "dim": 32, "depth": 4, "num_heads": 2}
# lkca.seg backbone -> the MMSegmentation backbone type of its configs/mmseg twin
MMSEG_BACKBONES = {"resnet50_seg": "ResNetV1c", "swin_s_seg": "SwinTransformer",
                   "twins_pcpvt_s_seg": "PCPVT"}


def _params(module):
    return sum(p.numel() for p in module.parameters())


def test_registered_in_the_mmseg_scope():
    assert MODELS.scope == "mmseg"
    assert MODELS.get("LKCAViTBackbone") is LKCAViTBackbone
    assert MODELS.get("LKCAMultiLevelNeck") is LKCAMultiLevelNeck
    assert ROOT._search_child("mmseg") is MODELS  # what default_scope="mmseg" resolves to
    assert USING_MMSEG == (importlib.util.find_spec("mmseg") is not None)


@pytest.mark.parametrize("arch", ["vit_s_seg", "lkca_s_seg"])
def test_backbone_and_neck_build_through_the_default_scope(arch):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("mmseg"):
        backbone = ROOT.build(dict(type="LKCAViTBackbone", arch=arch, **TINY))
        neck = ROOT.build(dict(type="LKCAMultiLevelNeck", in_channels=[32] * 4, out_channels=32))
    feats = backbone(torch.randn(2, 3, 64, 64))
    assert isinstance(feats, tuple) and [f.shape for f in feats] == [(2, 32, 4, 4)] * 4
    assert [f.shape[-1] for f in neck(feats)] == [16, 8, 4, 2]  # strides 4, 8, 16, 32
    native = lkca.create_segmentor(arch, "upernet", **TINY)
    assert _params(backbone) == _params(native.backbone)
    assert _params(neck) == _params(native.neck)


def test_unknown_arch_is_a_one_line_error():
    with pytest.raises(lkca.UserError, match="unknown segmentation backbone 'lkca_m_seg'"):
        MODELS.build(dict(type="LKCAViTBackbone", arch="lkca_m_seg"))


def test_configs_mirror_configs_seg():
    assert {p.stem for p in CONFIGS} == {
        p.stem for p in (CONFIGS[0].parents[1] / "seg" / "ade20k").glob("*_seg_*.yaml")}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_and_matches_the_native_segmentor(path):
    import yaml

    cfg = Config.fromfile(str(path))
    native = yaml.safe_load((path.parents[1] / "seg" / "ade20k" / f"{path.stem}.yaml").read_text())
    head, bb, iters = native["head"], native["backbone"], native["iters"]
    args = native.get("model_args", {})
    assert cfg.custom_imports.imports == ["lkca.mmseg"] and cfg.default_scope == "mmseg"
    backbone = cfg.model.backbone  # lkca's, by arch name, or MMSegmentation's own type
    assert (backbone.type if bb in MMSEG_BACKBONES else backbone.arch) == MMSEG_BACKBONES.get(bb, bb)
    assert cfg.train_cfg.max_iters == iters
    assert cfg.param_scheduler[-1].end == iters
    assert cfg.train_dataloader.batch_size * 8 == 16  # 8 GPUs x 2 = base.yaml's batch_size
    assert cfg.optim_wrapper.optimizer.lr == 6e-5
    model = cfg.model
    assert (model.decode_head.type, "auxiliary_head" in model) == (
        ("UPerHead", True) if head == "upernet" else ("FPNHead", False))
    assert model.decode_head.num_classes == 150
    if bb in MMSEG_BACKBONES:  # Table 7 comparison rows: MMSegmentation's own backbone, no lkca neck
        channels = create_backbone(bb).out_channels
        assert model.backbone.type == MMSEG_BACKBONES[bb]
        if head == "upernet":
            assert model.neck is None and model.decode_head.in_channels == channels
            assert model.auxiliary_head.in_channels == channels[2]
        else:
            assert model.neck == dict(type="FPN", in_channels=channels, out_channels=256, num_outs=4)
        return
    dim = args.get("dim", 384)
    neck_cfg = model.neck[0] if head == "fpn" else model.neck
    assert neck_cfg.in_channels == [dim] * 4 and neck_cfg.out_channels == dim
    assert model.backbone == dict(type="LKCAViTBackbone", arch=bb, img_size=512, **args)
    if path.stem == "upernet_lkca_s_seg_20k":  # one build (slow at 512 px): as the native one
        init_default_scope("mmseg")
        backbone = MODELS.build(dict(model.backbone, depth=4, img_size=128))
        assert _params(backbone) == _params(create_backbone(bb, depth=4, img_size=128))
