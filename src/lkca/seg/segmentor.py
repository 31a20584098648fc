"""Encoder-decoder segmentor (MMSegmentation's ``EncoderDecoder``): backbone -> neck -> head, with an
optional auxiliary head for training; whole-image and sliding-window inference.

``create_segmentor("lkca_s_seg", "upernet")`` builds the paper's Table 7 models (section 4.2).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from lkca.checkpoint.metadata import segmentor_record, set_pretrained_cfg
from lkca.checkpoint.pretrained_dir import save_pretrained
from lkca.errors import ConfigError
from lkca.layers.input_checks import check_images
from lkca.models.profile import count_params
from lkca.seg.backbone import HIERARCHICAL, create_backbone
from lkca.seg.heads import FCNHead, SemanticFPN, UPerHead, resize
from lkca.seg.neck import MultiLevelNeck

# A head factory: (channels of the 4 levels, classes, channels or None for its default, auxiliary
# loss weight) -> (decode head, auxiliary head or None).
HeadFactory = Callable[[list[int], int, "int | None", float, int],
                       "tuple[nn.Module, FCNHead | None]"]
HEADS: dict[str, HeadFactory] = {}  # filled by @register_head; names accepted by create_segmentor


def register_head(name: str) -> Callable[[HeadFactory], HeadFactory]:
    """Register a decode-head factory under ``name`` (the registry style of
    :func:`lkca.models.registry.register_model`)."""

    def wrap(fn: HeadFactory) -> HeadFactory:
        if name in HEADS:
            raise ValueError(f"segmentation head {name!r} is registered twice")
        HEADS[name] = fn
        return fn

    return wrap


@register_head("upernet")
def upernet(levels: list[int], num_classes: int, channels: int | None,
            aux_weight: float, aux_index: int) -> tuple[nn.Module, FCNHead | None]:
    """UperNet (channels 512) with an FCN auxiliary head (half the channels, 256) on level
    ``aux_index``, loss weight ``aux_weight`` (MMSegmentation's UperNet configs)."""
    ch = channels or 512
    return (UPerHead(levels, num_classes, ch),
            FCNHead(levels[aux_index], num_classes, ch // 2, in_index=aux_index,
                    loss_weight=aux_weight))


@register_head("fpn")
def fpn(levels: list[int], num_classes: int, channels: int | None,
        aux_weight: float, aux_index: int) -> tuple[nn.Module, FCNHead | None]:
    """Semantic FPN: FPN neck with twice the head's channels (256), head channels 128, no
    auxiliary head (MMSegmentation's FPN configs)."""
    ch = channels or 128
    return SemanticFPN(levels, num_classes, ch, fpn_channels=2 * ch), None

# Paper Table 7 (ADE20K, 512x512): parameters of the whole segmentor.
PAPER_PARAMS = {
    ("vit_s_seg", "upernet"): 57.66e6, ("lkca_s_seg", "upernet"): 50.58e6,
    ("vit_s_seg", "fpn"): 37.23e6, ("lkca_s_seg", "fpn"): 30.18e6,
    ("resnet50_seg", "upernet"): 64.12e6, ("swin_s_seg", "upernet"): 51.90e6,
    ("twins_pcpvt_s_seg", "upernet"): 53.30e6, ("twins_pcpvt_s_seg", "fpn"): 33.43e6,
}


class Segmentor(nn.Module):
    """Backbone + neck + decode head (+ auxiliary head, used for the training loss only).

    ``forward(images)`` (B, 3, H, W), H and W multiples of the backbone's patch, returns logits
    (B, num_classes, H, W) (the head's stride-4 logits, bilinearly upsampled).
    Loss (:meth:`forward_train`): cross-entropy with ``ignore_index`` (255), summed over labelled
    pixels and divided by all pixels (MMSegmentation's default ``avg_non_ignore=False``); the
    auxiliary loss is weighted by ``aux_head.loss_weight`` (0.4).
    """

    def __init__(self, backbone: nn.Module, neck: nn.Module | None, head: nn.Module,
                 aux_head: FCNHead | None = None, ignore_index: int = 255) -> None:
        super().__init__()
        self.backbone, self.neck, self.head, self.aux_head = backbone, neck, head, aux_head
        self.ignore_index = ignore_index
        self.size_divisor = int(getattr(backbone, "patch_size", 1))

    def extract(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Pyramid of maps (strides 4, 8, 16, 32: the multi-level neck's, or the backbone's own)."""
        check_images(images, "Segmentor")
        feats = self.backbone(images)
        return self.neck(feats) if self.neck is not None else feats

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return resize(self.head(self.extract(images)), images.shape[-2:])

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``directory`` for
        :func:`lkca.from_pretrained` (segmentors made by :func:`create_segmentor`)."""
        return save_pretrained(self, directory)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """CE of logits (B, K, h, w), upsampled to labels (B, H, W) int64 with ``ignore_index``."""
        logits = resize(logits, labels.shape[-2:])
        per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=self.ignore_index,
                                    reduction="none")  # (B, H, W), 0 at ignored pixels
        return per_pixel.mean()

    def forward_train(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses for images (B, 3, H, W) and labels (B, H, W) (int64, 255 = ignore).

        Returns ``{"loss": total, "loss_seg": decode loss, "loss_aux": weighted aux loss}`` (the
        last only with an auxiliary head).
        """
        if labels.shape[0] != images.shape[0] or labels.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"Segmentor: labels {tuple(labels.shape)} do not match images "
                             f"{tuple(images.shape)}; expected (B, H, W)")
        feats = self.extract(images)
        losses = {"loss_seg": self.loss(self.head(feats), labels.long())}
        if self.aux_head is not None:
            losses["loss_aux"] = self.aux_head.loss_weight * self.loss(self.aux_head(feats), labels.long())
        losses["loss"] = cast(torch.Tensor, sum(losses.values()))
        return losses

    def _padded_forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits at the input size for any size: zero-pad bottom/right to the patch multiple."""
        H, W = images.shape[-2:]
        d = self.size_divisor
        ph, pw = (-H) % d, (-W) % d
        x = F.pad(images, (0, pw, 0, ph)) if ph or pw else images
        return self(x)[..., :H, :W]

    @torch.no_grad()
    def predict_whole(self, images: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Whole-image inference: logits (B, K, H, W), resized to ``out_size`` (e.g. the original
        image size of the ground truth) when given. Sides need not be multiples of the patch."""
        logits = self._padded_forward(images)
        return resize(logits, out_size) if out_size is not None else logits

    @torch.no_grad()
    def predict_slide(self, images: torch.Tensor, crop: int = 512, stride: int = 341,
                      out_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Sliding-window inference (MMSegmentation's ``slide_inference``): ``crop`` x ``crop``
        windows every ``stride`` pixels (the last one flush with the border), logits averaged
        where windows overlap. Returns (B, K, H, W), or ``out_size`` when given."""
        B, _, H, W = images.shape
        rows = max(H - crop + stride - 1, 0) // stride + 1
        cols = max(W - crop + stride - 1, 0) // stride + 1
        total: torch.Tensor | None = None
        count = images.new_zeros(1, 1, H, W)
        for r in range(rows):
            for c in range(cols):
                y1, x1 = r * stride, c * stride
                y2, x2 = min(y1 + crop, H), min(x1 + crop, W)
                y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
                logits = self._padded_forward(images[..., y1:y2, x1:x2])
                if total is None:
                    total = logits.new_zeros(B, logits.shape[1], H, W)
                total[..., y1:y2, x1:x2] += logits
                count[..., y1:y2, x1:x2] += 1
        assert total is not None
        logits = total / count
        return resize(logits, out_size) if out_size is not None else logits


def create_segmentor(backbone: str, head: str, num_classes: int = 150, *, aux_weight: float = 0.4,
                     head_channels: int | None = None, neck_resample: str = "bilinear",
                     **backbone_overrides: Any) -> Segmentor:
    """Build a segmentor of Table 7: ``backbone`` in :data:`BACKBONES`, ``head`` "upernet" or "fpn".

    UperNet: channels 512 (``head_channels``) with an FCN auxiliary head (channels half of that,
    256), loss weight ``aux_weight``, on the level MMSegmentation's configs put it: the fourth
    (stride 32, ``in_index=3``) after the multi-level neck of a plain ViT
    (configs/_base_/models/upernet_vit-b16_ln_mln.py), the third (stride 16, ``in_index=2``) of
    a hierarchical backbone (upernet_r50.py, upernet_swin.py). FPN: FPN neck 2 * ``head_channels``
    (256) channels and FPN head ``head_channels`` (128), no auxiliary head. ``neck_resample``:
    "bilinear" (MMSegmentation's ``MultiLevelNeck``, the default) or "deconv" (transposed
    convs), see :class:`MultiLevelNeck`; the record always names it, so a segmentor saved before
    bilinear became the default (no ``neck_resample`` in its record) rebuilds with "deconv"
    (:func:`lkca.pretrained.upgrade_record`). Other keywords override the backbone's ViTConfig (``depth``,
    ``dim``, ``num_heads``, ``drop_path_rate``, ``lkca_impl`` ...; tests use small ones).
    The :data:`HIERARCHICAL` backbones (ResNet-50, Swin-S, Twins-PCPVT-S) give the pyramid
    themselves: no neck (``neck_resample`` unused), heads on their own channels; their keywords
    are their constructor's (``drop_path_rate``, ``depths`` ...).
    """
    if head not in HEADS:
        close = difflib.get_close_matches(head, list(HEADS), n=1, cutoff=0.4)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown segmentation head {head!r}; {hint}choose one of {', '.join(HEADS)}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be positive, got {num_classes}")
    bb = create_backbone(backbone, **backbone_overrides)
    out_channels: list[int] = list(cast(list[int], bb.out_channels))
    neck: MultiLevelNeck | None = None
    if backbone in HIERARCHICAL:  # already strides 4, 8, 16, 32
        levels, aux_index = out_channels, 2
    else:
        dim = out_channels[0]
        neck = MultiLevelNeck(out_channels, dim, (4, 2, 1, 0.5), neck_resample)
        levels, aux_index = [dim] * 4, 3
    decode, aux = HEADS[head](levels, num_classes, head_channels, aux_weight, aux_index)
    model = Segmentor(bb, neck, decode, aux)
    extra: dict[str, Any] = {k: v for k, v in (("aux_weight", aux_weight),
                                               ("head_channels", head_channels))
                             if v != _DEFAULTS[k]}
    if neck is not None:
        extra["neck_resample"] = neck_resample
    return cast(Segmentor, set_pretrained_cfg(model, segmentor_record(
        backbone, head, num_classes, {**extra, **backbone_overrides})))


_DEFAULTS = {"aux_weight": 0.4, "head_channels": None}


def segmentor_params(num_classes: int = 150, neck_resample: str = "bilinear",
                     combos: Sequence[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Parameter counts of (backbone, head) ``combos`` (default: the Table 7 combinations of
    :data:`PAPER_PARAMS`), with the paper's figure (None for a combination it does not list)
    and the parts.

    Rows: ``{"backbone", "head", "params", "paper_params", "ratio", "backbone_params",
    "neck_params", "head_params", "aux_params"}``.
    """
    rows = []
    for bb, head in combos or list(PAPER_PARAMS):
        paper = PAPER_PARAMS.get((bb, head))
        model = create_segmentor(bb, head, num_classes, neck_resample=neck_resample)
        parts = {name: count_params(m) if m is not None else 0
                 for name, m in (("backbone", model.backbone), ("neck", model.neck),
                                 ("head", model.head), ("aux", model.aux_head))}
        total = sum(parts.values())
        rows.append({"backbone": bb, "head": head, "params": total,
                     "paper_params": int(paper) if paper else None,
                     "ratio": total / paper if paper else None,
                     **{f"{k}_params": v for k, v in parts.items()}})
    return rows
