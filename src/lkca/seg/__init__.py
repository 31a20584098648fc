"""Semantic segmentation (paper section 4.2): ViT-S / LKCA-S backbones, neck, UperNet and FPN heads,
the segmentor and its metrics; Table 7's comparison backbones ResNet-50, Swin-S, Twins-PCPVT-S."""

from lkca.seg.backbone import BACKBONES, HIERARCHICAL, create_backbone, lkca_s_seg, vit_s_seg
from lkca.seg.metrics import ConfusionMatrix, metrics_from_confusion
from lkca.seg.segmentor import HEADS, Segmentor, create_segmentor, segmentor_params

__all__ = [
    "BACKBONES", "HEADS", "HIERARCHICAL", "ConfusionMatrix", "Segmentor", "create_backbone",
    "create_segmentor", "lkca_s_seg", "metrics_from_confusion", "segmentor_params", "vit_s_seg",
]
