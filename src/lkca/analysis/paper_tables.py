"""The paper's result tables (arXiv 2401.05738, Tables 1-7), transcribed row by row.

Classification (section 4.1): Tables 1-3 compare ViT and ViT-LKCA at five sizes on CIFAR-10,
CIFAR-100 and Tiny-ImageNet; Table 4 compares LKCA-T / LKCA-B with other ViT variants on CIFAR-10,
CIFAR-100 and SVHN; Table 5 does the same on Tiny-ImageNet. Segmentation (section 4.2, ADE20K from
scratch): Table 6 is UperNet with ViT-B / LKCA-B at 2k-16k iterations, Table 7 compares LKCA-S
with other backbones under UperNet and FPN at 10k and 20k iterations.

"Flops" are the paper's column as printed (multiply-accumulates of one image, without the token
mixing: docs/paper-tables.md); Tables 3 and 5 print the same "# Params" / "Flops" as the CIFAR-10
tables for the models they share, although Tiny-ImageNet has 64x64 inputs and 200 classes.

Which registered model stands for a paper row is kept in one place, :data:`MODEL_NAMES`
(classification) and :data:`SEG_BACKBONES` (segmentation); a name that is not registered yet is
shown as "not registered" and is picked up as soon as a model with that name is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClsRow:
    """One classification row: top-1 (%) per data set of its table, "# Params", "Flops".

    Rows of a table of your own (``lkca reproduce --table FILE.yaml``, docs/reproduce.md) name
    their model and its architecture ``model_args`` themselves and may leave the paper's
    figures out (None); the paper's rows find their model in :data:`MODEL_NAMES`.
    """

    row: str  # as printed (reference numbers dropped)
    top1: tuple[float | None, ...]  # one per ClsTable.datasets
    params: float | None
    macs: float | None
    model: str | None = None  # registered name; None: MODEL_NAMES[row]
    model_args: dict[str, Any] = field(default_factory=dict, hash=False)  # architecture overrides
    # a row of your own: its resolved config; a run fills the row only when it is a run of this
    # config (lkca.analysis.run_index.same_config), never another row's run of the same model
    config: dict[str, Any] | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class ClsTable:
    number: int
    title: str
    datasets: tuple[str, ...]  # lkca data set names, in the table's column order
    img_size: int  # the input of the table's data sets (our params/MACs are measured there)
    num_classes: int  # classes of the first data set (the one our params/MACs are measured for)
    rows: tuple[ClsRow, ...]


@dataclass(frozen=True)
class SegBackbone:
    """The segmentation backbone standing for a paper row: a ``lkca.seg.backbone`` name and the
    ``model_args`` a run's config must carry (configs/seg/ade20k/*.yaml)."""

    name: str
    model_args: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SegRow:
    """One ADE20K row: aAcc / mIoU (%) after ``iters`` iterations, "# Params", "Flops"."""

    backbone: str  # as printed
    iters: int
    head: str  # "upernet" | "fpn"
    aAcc: float | None  # None: no paper figure (a table of your own)
    mIoU: float | None
    params: float | None
    macs: float | None
    model: SegBackbone | None = None  # None: SEG_BACKBONES[backbone]
    config: dict[str, Any] | None = field(default=None, hash=False, compare=False)  # as ClsRow's


@dataclass(frozen=True)
class SegTable:
    """A segmentation table. ``run_iters``: the length of the one run per backbone and head whose
    evaluations are the rows (the paper's Tables 6-7: 20,000, MMSegmentation's schedule_20k);
    None: each row is the final evaluation of a run of its own ending at the row's iterations
    (the per-row reading, and every table of your own). docs/segmentation.md, section 4."""

    number: int
    title: str
    rows: tuple[SegRow, ...]
    crop_size: int = 512  # ADE20K crop (MMSegmentation), where our params/MACs are measured
    run_iters: int | None = None


def _vit_rows(top1: tuple[float, ...]) -> tuple[ClsRow, ...]:
    """Tables 1-3 share their rows and counts; only the accuracies differ."""
    sizes = (("ViT", 2.69e6, 174.25e6), ("ViT-LKCA", 2.69e6, 170.81e6),
             ("VIT/0.5M", 0.48e6, 30.58e6), ("ViT/0.5M-LKCA", 0.50e6, 31.34e6),
             ("VIT/1M", 1.06e6, 68.36e6), ("ViT/1M-LKCA", 1.03e6, 64.82e6),
             ("VIT/2M", 1.96e6, 126.09e6), ("ViT/2M-LKCA", 2.03e6, 128.66e6),
             ("VIT/4M", 3.95e6, 255.47e6), ("ViT/4M-LKCA", 4.05e6, 257.43e6),
             ("VIT/8M", 7.85e6, 508.72e6), ("ViT/8M-LKCA", 7.98e6, 506.00e6))
    return tuple(ClsRow(row, (acc,), params, macs)
                 for (row, params, macs), acc in zip(sizes, top1, strict=True))


TABLE_1 = ClsTable(1, "CIFAR-10: ViT vs ViT-LKCA", ("cifar10",), 32, 10, _vit_rows(
    (93.36, 94.11, 87.83, 90.94, 91.16, 92.49, 92.32, 93.55, 93.64, 94.71, 94.46, 94.88)))
TABLE_2 = ClsTable(2, "CIFAR-100: ViT vs ViT-LKCA", ("cifar100",), 32, 100, _vit_rows(
    (72.65, 76.50, 64.68, 69.35, 70.86, 73.40, 71.17, 75.94, 72.82, 76.95, 73.39, 78.57)))
TABLE_3 = ClsTable(3, "Tiny-ImageNet: ViT vs ViT-LKCA", ("tinyimagenet",), 64, 200, _vit_rows(
    (55.74, 60.95, 46.53, 50.59, 53.46, 57.29, 54.58, 60.70, 56.16, 62.30, 57.39, 63.38)))

TABLE_4 = ClsTable(4, "ViT variants on CIFAR-10, CIFAR-100, SVHN",
                   ("cifar10", "cifar100", "svhn"), 32, 10, (
    ClsRow("ViT-Lite", (91.16, 70.86, 97.53), 1.06e6, 68.36e6),
    ClsRow("Swin-T", (91.21, 70.37, 96.40), 1.01e6, 38.26e6),
    ClsRow("CaiT-T", (91.99, 70.65, 97.53), 1.00e6, 61.16e6),
    ClsRow("MobileViTv2-T", (91.46, 67.88, 96.60), 1.00e6, 7.43e6),
    ClsRow("LKCA-T", (92.49, 73.40, 97.15), 1.03e6, 64.82e6),
    ClsRow("ViT-Small", (93.36, 72.65, 97.90), 2.69e6, 174.25e6),
    ClsRow("Swin-S", (93.99, 75.34, 97.59), 2.87e6, 94.72e6),
    ClsRow("CaiT-S", (94.02, 74.70, 97.79), 2.74e6, 163.55e6),
    ClsRow("MobileViTv2-S", (93.48, 71.70, 96.98), 3.92e6, 24.55e6),
    ClsRow("LKCA-B", (94.11, 76.50, 97.68), 2.69e6, 170.81e6),
))

TABLE_5 = ClsTable(5, "ViT variants on Tiny-ImageNet", ("tinyimagenet",), 64, 200, tuple(
    ClsRow(row, (acc,), params, macs) for row, acc, params, macs in (
        ("T2T-T", 53.92, 1.07e6, 78.23e6), ("RvT-T", 50.65, 1.07e6, 57.59e6),
        ("Swin-T", 54.93, 1.01e6, 38.26e6), ("CaiT-T", 54.76, 1.00e6, 61.16e6),
        ("XCiT-T", 56.78, 0.95e6, 51.44e6), ("ViT-Lite", 53.46, 1.06e6, 68.36e6),
        ("DeepViT-T", 34.64, 0.99e6, 62.96e6), ("RegionViT-T", 54.32, 0.97e6, 29.38e6),
        ("CrossViT-T", 47.03, 1.04e6, 57.59e6), ("LKCA-T", 57.29, 1.03e6, 64.82e6),
        ("T2T-S", 41.25, 2.56e6, 52.96e6), ("RvT-S", 55.51, 2.70e6, 145.07e6),
        ("Swin-S", 58.61, 2.87e6, 94.72e6), ("CaiT-S", 59.21, 2.74e6, 163.55e6),
        ("XCiT-S", 60.09, 2.81e6, 157.54e6), ("ViT-Small", 55.74, 2.69e6, 174.25e6),
        ("DeepViT-S", 44.45, 2.53e6, 162.85e6), ("Twins_SVT-S", 37.13, 2.76e6, 197.00e6),
        ("RegionViT-S", 53.96, 2.86e6, 53.82e6), ("CrossViT-S", 52.70, 2.40e6, 126.11e6),
        ("LKCA-B", 60.95, 2.69e6, 170.81e6),
        ("T2T-B", 58.46, 13.45e6, 853.02e6), ("CvT-B", 55.88, 6.48e6, 25.63e6),
        ("MobileViTv2", 58.28, 8.17e6, 189.77e6), ("Twins_SVT-B", 49.24, 9.04e6, 308.74e6),
        ("RegionViT-B", 57.83, 12.39e6, 195.02e6), ("LKCA-L", 63.43, 12.53e6, 799.61e6),
    )))

# The paper "explore[s] their performance during 0 - 20,000 iterations" (section 4.2) with
# MMSegmentation: one 20k run per backbone and head (schedule_20k, evaluations every 2k) holds
# every row of both tables (docs/segmentation.md, section 4).
PAPER_RUN_ITERS = 20000

TABLE_6 = SegTable(6, "ADE20K, UperNet: ViT-B vs LKCA-B", tuple(
    SegRow(bb, iters, "upernet", aacc, miou, params, macs) for bb, iters, aacc, miou, params, macs in (
        ("ViT-B", 2000, 40.90, 22.28, 0.144e9, 0.108e12),
        ("LKCA-B", 2000, 45.48, 24.65, 0.102e9, 0.115e12),
        ("ViT-B", 4000, 47.41, 28.08, 0.144e9, 0.108e12),
        ("LKCA-B", 4000, 52.67, 30.00, 0.102e9, 0.115e12),
        ("ViT-B", 8000, 53.43, 31.73, 0.144e9, 0.108e12),
        ("LKCA-B", 8000, 50.79, 33.73, 0.102e9, 0.115e12),
        ("ViT-B", 16000, 61.55, 39.33, 0.144e9, 0.108e12),
        ("LKCA-B", 16000, 65.49, 40.60, 0.102e9, 0.115e12),
    )), run_iters=PAPER_RUN_ITERS)

TABLE_7 = SegTable(7, "ADE20K: backbones under UperNet and FPN", tuple(
    SegRow(bb, iters, head, aacc, miou, params, macs)
    for bb, iters, head, aacc, miou, params, macs in (
        ("Vit-S", 10000, "upernet", 55.55, 32.92, 57.66e6, 67.25e9),
        ("ResNet-50", 10000, "upernet", 58.12, 35.35, 64.12e6, 0.238e12),
        ("Twins_PCPVT-S", 10000, "upernet", 52.56, 29.64, 53.30e6, 0.234e12),
        ("Swin-S", 10000, "upernet", 57.18, 35.30, 51.90e6, 0.231e12),
        ("LKCA-S", 10000, "upernet", 60.16, 37.16, 50.58e6, 65.94e9),
        ("Vit-S", 10000, "fpn", 56.56, 35.84, 37.23e6, 76.14e9),
        ("Twins_PCPVT-S", 10000, "fpn", 56.74, 33.09, 33.43e6, 49.74e9),
        ("LKCA-S", 10000, "fpn", 62.55, 39.03, 30.18e6, 77.92e9),
        ("Vit-S", 20000, "upernet", 58.51, 36.61, 57.66e6, 67.25e9),
        ("ResNet-50", 20000, "upernet", 62.76, 37.84, 64.12e6, 0.238e12),
        ("Twins_PCPVT-S", 20000, "upernet", 58.91, 38.00, 53.30e6, 0.234e12),
        ("Swin-S", 20000, "upernet", 58.00, 37.57, 51.90e6, 0.231e12),
        ("LKCA-S", 20000, "upernet", 64.37, 40.09, 50.58e6, 65.94e9),
        ("Vit-S", 20000, "fpn", 63.36, 41.64, 37.23e6, 76.14e9),
        ("Twins_PCPVT-S", 20000, "fpn", 58.51, 36.61, 33.43e6, 49.74e9),
        ("LKCA-S", 20000, "fpn", 67.21, 41.81, 30.18e6, 77.92e9),
    )), run_iters=PAPER_RUN_ITERS)

CLS_TABLES = (TABLE_1, TABLE_2, TABLE_3, TABLE_4, TABLE_5)
SEG_TABLES = (TABLE_6, TABLE_7)
TABLES: dict[int, ClsTable | SegTable] = {t.number: t for t in (*CLS_TABLES, *SEG_TABLES)}

# Paper row -> registered model name (or alias). Comparison models use the `<family>_<size>`
# aliases of docs/baselines.md; until one is registered its rows read "not registered".
MODEL_NAMES: dict[str, str] = {
    # Tables 1-3
    "ViT": "vit_2p7m", "ViT-LKCA": "vit_lkca_2p7m",
    "VIT/0.5M": "vit_500k", "ViT/0.5M-LKCA": "vit_lkca_500k",
    "VIT/1M": "vit_1m", "ViT/1M-LKCA": "vit_lkca_1m",
    "VIT/2M": "vit_2m", "ViT/2M-LKCA": "vit_lkca_2m",
    "VIT/4M": "vit_4m", "ViT/4M-LKCA": "vit_lkca_4m",
    "VIT/8M": "vit_8m", "ViT/8M-LKCA": "vit_lkca_8m",
    # Tables 4-5: our models
    "ViT-Lite": "vit_1m", "ViT-Small": "vit_2p7m",
    "LKCA-T": "vit_lkca_1m", "LKCA-B": "vit_lkca_2p7m", "LKCA-L": "vit_lkca_12m",
    # Tables 4-5: comparison models (lkca.models.baselines)
    "Swin-T": "swin_t", "Swin-S": "swin_s", "CaiT-T": "cait_t", "CaiT-S": "cait_s",
    "MobileViTv2-T": "mobilevitv2_t", "MobileViTv2-S": "mobilevitv2_s",
    "MobileViTv2": "mobilevitv2_b",
    "T2T-T": "t2t_t", "T2T-S": "t2t_s", "T2T-B": "t2t_b",
    "RvT-T": "rvt_t", "RvT-S": "rvt_s",
    "XCiT-T": "xcit_t", "XCiT-S": "xcit_s",
    "DeepViT-T": "deepvit_t", "DeepViT-S": "deepvit_s",
    "RegionViT-T": "regionvit_t", "RegionViT-S": "regionvit_s", "RegionViT-B": "regionvit_b",
    "CrossViT-T": "crossvit_t", "CrossViT-S": "crossvit_s",
    "Twins_SVT-S": "twins_svt_s", "Twins_SVT-B": "twins_svt_b",
    "CvT-B": "cvt_b",
}


# A ViT backbone's neck is part of its architecture: MMSegmentation's bilinear MultiLevelNeck
# (lkca.seg.config.SegConfig names it in every run's model_args).
_NECK = {"neck_resample": "bilinear"}
_B = {"dim": 768, "num_heads": 12, **_NECK}  # ViT-B width (configs/seg/ade20k/upernet_*_b_seg_*.yaml)
SEG_BACKBONES: dict[str, SegBackbone] = {
    "Vit-S": SegBackbone("vit_s_seg", _NECK), "LKCA-S": SegBackbone("lkca_s_seg", _NECK),
    "ViT-B": SegBackbone("vit_s_seg", _B), "LKCA-B": SegBackbone("lkca_s_seg", _B),
    "ResNet-50": SegBackbone("resnet50_seg"), "Swin-S": SegBackbone("swin_s_seg"),
    "Twins_PCPVT-S": SegBackbone("twins_pcpvt_s_seg"),
}
