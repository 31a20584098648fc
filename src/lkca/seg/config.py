"""Segmentation training configuration (paper section 4.2): one dataclass in the config language
of :mod:`lkca.config` (YAML files that extend ``configs/seg/ade20k/base.yaml``, short flags,
``--set key=value``).

The paper trains with MMSegmentation from scratch and gives only the iteration counts; every other
value is MMSegmentation's ViT + UperNet ADE20K recipe, cited per field below as "MMSeg <file>
line" (open-mmlab/mmsegmentation, at the commits docs/segmentation.md section 3 names):
``configs/vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py`` (optimiser, schedule, batch),
``configs/_base_/models/upernet_vit-b16_ln_mln.py`` (neck, test mode),
``configs/_base_/datasets/ade20k.py`` (pipeline) and ``configs/_base_/schedules/schedule_20k.py``
(length, evaluation interval). docs/segmentation.md, section 3, tabulates them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lkca.autotune.tuner import POLICIES as IMPL_POLICIES
from lkca.checkpoint.metadata import check_image_side
from lkca.config import check_choice, check_positive, check_types, load_config, merge, suggest
from lkca.errors import ConfigError
from lkca.runtime.device import PRECISIONS, check_device_name
from lkca.seg.backbone import BACKBONES, HIERARCHICAL, backbone_keys
from lkca.seg.segmentor import HEADS

EVAL_MODES = ("whole", "slide")
# What may differ on --resume (applied and recorded in the run's resume_history; any other key is
# refused, lkca.runtime.resume_policy): where and how the run continues; iters is not one (it
# sets the poly schedule).
RESUMABLE = frozenset({"data_dir", "device", "progress", "stop_after_iters", "grad_clip",
                       "max_eval_images", "impl_policy", "prefetch_batches"})
MODEL_KEYS = {"head_channels", "neck_resample", "aux_weight"}  # create_segmentor's; + backbone_keys


@dataclass
class SegConfig:
    """Every knob of a segmentation run. YAML keys and ``lkca seg train`` flags use these names."""

    # what to train
    # vit_s_seg | lkca_s_seg | resnet50_seg | swin_s_seg | twins_pcpvt_s_seg (paper Table 7)
    backbone: str = "lkca_s_seg"
    head: str = "upernet"  # upernet | fpn (paper Table 7)
    # keywords of create_segmentor: head_channels, neck_resample, aux_weight, and ViTConfig
    # overrides of the backbone (depth, dim, num_heads, drop_path_rate, lkca_impl, img_size ...);
    # img_size defaults to crop_size (the grid the LKCA global kernel is built for). A ViT
    # backbone's neck is always named here: neck_resample "bilinear" (MMSeg
    # upernet_vit-b16_ln_mln.py line 26, MultiLevelNeck) unless set ("deconv": the option)
    model_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 150  # ADE20K SceneParsing
    data_dir: str | None = None  # folder holding ADEChallengeData2016/
    out: str | None = None  # default runs/seg-<head>_<backbone>
    # schedule: AdamW + linear warm-up + poly, per iteration
    # MMSeg schedule_20k.py line 15 max_iters=20000: the paper's one run per backbone and head
    # ("during 0 - 20,000 iterations"), its table rows evaluations of that run (eval_iters)
    iters: int = 20000
    # global over all processes; MMSeg vit config lines 41-42: 8 GPUs x batch_size=2
    batch_size: int = 16
    crop_size: int = 512  # MMSeg ade20k.py line 4 crop_size = (512, 512)
    # MMSeg ade20k.py lines 10 (RandomResize scale, ratio 0.5-2.0) and 20 (test Resize scale)
    img_scale: tuple[int, int] = (2048, 512)
    lr: float = 6e-5  # MMSeg vit config line 20: AdamW lr=0.00006
    # MMSeg vit config line 20; none on pos_embed, norms (lines 21-25) nor biases (lkca)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)  # MMSeg vit config line 20
    warmup_iters: int = 1500  # MMSeg vit config line 30: LinearLR end=1500
    warmup_ratio: float = 1e-6  # MMSeg vit config line 30: LinearLR start_factor=1e-6
    power: float = 1.0  # MMSeg vit config line 34: PolyLR power=1.0 (to the last iteration)
    min_lr: float = 0.0  # MMSeg vit config line 33: PolyLR eta_min=0.0
    grad_clip: float | None = None  # MMSeg vit config: no clip_grad
    # evaluation
    eval_interval: int = 2000  # MMSeg schedule_20k.py line 15 val_interval=2000 (and the last)
    # evaluate also after these iterations (the iterations a table's rows name: Table 6 2k, 4k,
    # 8k, 16k; Table 7 10k, 20k), whatever eval_interval is; each evaluation is a metrics.jsonl line
    eval_iters: list[int] = field(default_factory=list)
    # MMSeg upernet_vit-b16_ln_mln.py line 57 test_cfg mode='whole'; or "slide"
    eval_mode: str = "whole"
    # sliding window: crop_size windows every slide_stride px; null = 2/3 of crop_size rounded
    # down, MMSeg's slide configs' 341 for 512 (stride=(341, 341), crop_size=(512, 512))
    slide_stride: int | None = None
    max_eval_images: int | None = None  # evaluate on the first N validation images (quick looks)
    # engine
    seed: int = 0
    # batches decoded and augmented ahead of the step by a background thread (docs/segmentation.md,
    # "How input is produced"): 2 as torch DataLoader's prefetch_factor default; 0 makes each batch
    # on the training thread when it is needed. Batches are the same for every value
    prefetch_batches: int = 2
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    progress: bool = True
    stop_after_iters: int | None = None  # save and exit after this many iters; --resume later
    # how LKCA's impl="auto" chooses: autotune | rule | conv | toeplitz | fft (docs/benchmarks.md,
    # "How auto chooses"); the choices made are recorded and replayed on --resume
    impl_policy: str = "autotune"
    # fp32 | tf32 | bf16 | fp16: the forward's autocast and TF32 (docs/recipe.md "Precision"); the
    # authors trained in fp32 (SPT main.py has no autocast); refused as a change on --resume
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_types(self)
        check_device_name(self.device, "device")  # the spelling; resolve_device: this machine's
        if self.slide_stride is None:  # derived: follows the crop
            self.slide_stride = self.crop_size * 2 // 3
        if self.backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {self.backbone!r}"
                              f"{suggest(self.backbone, list(BACKBONES))} (choose one of "
                              f"{', '.join(BACKBONES)})")
        if self.head not in HEADS:
            raise ConfigError(f"unknown head {self.head!r}{suggest(self.head, list(HEADS))} "
                              f"(choose one of {', '.join(HEADS)})")
        if self.eval_mode not in EVAL_MODES:
            raise ConfigError(f"eval_mode must be one of {', '.join(EVAL_MODES)}, got "
                              f"{self.eval_mode!r}")
        check_image_side(self.crop_size, "crop_size")
        if self.crop_size <= 0 or self.crop_size % 16:
            raise ConfigError(f"crop_size must be a positive multiple of the patch size 16, got "
                              f"{self.crop_size}; e.g. {max(16, self.crop_size // 16 * 16)}")
        check_positive(self, ("iters", "batch_size", "num_classes", "eval_interval", "slide_stride"))
        check_positive(self, ("max_eval_images", "stop_after_iters", "grad_clip"), null_ok=True)
        if self.prefetch_batches < 0:
            raise ConfigError(f"prefetch_batches must be >= 0 (0: no prefetching), got "
                              f"{self.prefetch_batches}")
        check_choice("impl_policy", self.impl_policy, IMPL_POLICIES)
        check_choice("precision", self.precision, PRECISIONS)
        if min(self.img_scale) <= 0:
            raise ConfigError(f"img_scale must hold two positive sides, got {self.img_scale}")
        if self.warmup_iters < 0 or not 0.0 < self.warmup_ratio <= 1.0:
            raise ConfigError(f"warmup_iters must be >= 0 and warmup_ratio in (0, 1] (got "
                              f"{self.warmup_iters}, {self.warmup_ratio})")
        if self.lr <= 0 or self.weight_decay < 0 or self.power <= 0 or not 0 <= self.min_lr < self.lr:
            raise ConfigError(f"need lr > 0, weight_decay >= 0, power > 0 and 0 <= min_lr < lr "
                              f"(got {self.lr}, {self.weight_decay}, {self.power}, {self.min_lr})")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas must lie in [0, 1), got {self.betas}")
        if self.slide_stride > self.crop_size:
            raise ConfigError(f"slide_stride {self.slide_stride} is larger than crop_size "
                              f"{self.crop_size}: sliding windows would leave gaps; use at most "
                              f"{self.crop_size}, or null for 2/3 of it (MMSeg: 341 for 512)")
        bad = [i for i in self.eval_iters if not 0 < i <= self.iters]
        if bad:
            raise ConfigError(f"eval_iters {bad[0]} is outside 1..iters ({self.iters}); list only "
                              "iterations the run reaches")
        self.eval_iters = sorted(set(self.eval_iters))
        if self.backbone not in HIERARCHICAL:  # the neck is part of the architecture: named
            self.model_args.setdefault("neck_resample", "bilinear")
        own = sorted(backbone_keys(self.backbone))
        allowed = sorted(MODEL_KEYS | set(own))
        for key in self.model_args:
            if key not in allowed:
                raise ConfigError(f"unknown model_args key {key!r}{suggest(key, allowed)} (keys: "
                                  "create_segmentor's head_channels, neck_resample, aux_weight, "
                                  f"or {self.backbone}'s own: {', '.join(own)})")

    def evaluates_at(self, it: int) -> bool:
        """Whether the run evaluates (and logs a metrics.jsonl line) after iteration ``it``."""
        return it == self.iters or it % self.eval_interval == 0 or it in self.eval_iters

    @property
    def out_dir(self) -> Path:
        """The run directory: ``out``, or ``runs/seg-<head>_<backbone>``."""
        return Path(self.out or f"runs/seg-{self.head}_{self.backbone}")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def build_seg_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                     sets: dict[str, Any] | None = None) -> SegConfig:
    """Defaults, then the YAML file (with its ``base:`` chain), then ``overrides`` (the short
    flags; ``None``: not given), then ``sets`` (``--set``, :func:`lkca.config.parse_overrides`)."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    return load_config(SegConfig, path, merge(flags, sets or {}))
