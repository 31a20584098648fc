"""Classification training configuration: one dataclass in the config language of
:mod:`lkca.config` (YAML files that extend a base recipe, short flags, ``--set key=value``).

The defaults are the paper's classification recipe (section 4.1); values the paper does not give
come from the recipe it follows, "Vision Transformer for Small-Size Datasets" (SPT, repository
aanna0701/SPT_LSA_ViT, main.py and utils/dataloader.py), as docs/recipe.md lists value by value.
``configs/cls/base.yaml`` spells the same recipe out for readers (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lkca.autotune.tuner import POLICIES as IMPL_POLICIES
from lkca.config import check_choice, check_positive, check_types, load_config, merge
from lkca.config.typecheck import check_fields
from lkca.errors import ConfigError
from lkca.models.registry import model_config_class
from lkca.runtime.device import PRECISIONS, check_device_name

# What may differ on --resume (applied and recorded in the run's resume_history; any other key is
# refused, lkca.runtime.resume_policy): where and how the run continues, and two fixes read at
# every step. epochs is not one: it sets the learning-rate schedule.
RESUMABLE = frozenset({"data_dir", "device", "progress", "compile", "eval_batch_size",
                       "stop_after_epochs", "skip_nonfinite", "grad_clip", "impl_policy"})


@dataclass
class TrainConfig:
    """Every knob of a classification run. YAML keys and ``lkca train`` flags use these names."""

    # what to train
    model: str = "vit_lkca_2p7m"
    model_args: dict[str, Any] = field(default_factory=dict)  # overrides of the model's config
    dataset: str = "cifar10"
    data_dir: str | None = None
    out: str | None = None  # default runs/<dataset>-<model>
    # optimisation (paper section 4.1; SPT = aanna0701/SPT_LSA_ViT at 54bd796, docs/recipe.md)
    epochs: int = 100  # paper; SPT main.py:45
    epoch_passes: float = 3.0  # SPT main.py:98 --ra 3 -> RASampler len_factor (:221-223): an
    # epoch reads 3 x N images, so 100 epochs are 300 passes; the schedule counts these steps
    warmup_epochs: int = 10  # paper; SPT main.py:47; capped at epochs
    batch_size: int = 128  # paper; SPT main.py:49 (global batch over all processes), drop_last
    lr: float = 1e-3  # paper; SPT main.py:51
    warmup_lr: float = 1e-6  # SPT utils/scheduler.py:45-57, :111: step 0 at min_lr 1e-6, warm-up
    # linear from there
    min_lr: float = 1e-6  # SPT utils/scheduler.py:59-62, :111: cosine down to 1e-6
    weight_decay: float = 0.05  # paper; SPT main.py:53
    weight_decay_1d: bool = True  # SPT main.py:230 AdamW(model.parameters()): every parameter
    # decays; False exempts biases and norm gains (timm's habit)
    skip_nonfinite: bool = False  # skip steps whose loss is NaN/inf (counted) instead of stopping
    grad_clip: float | None = None  # max gradient norm; None = off (neither paper nor SPT clip)
    ema_decay: float | None = None  # None = off; e.g. 0.9999
    # regularisation
    label_smoothing: float = 0.1  # SPT main.py:83 / utils/losses.py:11
    drop_path: float = 0.1  # SPT main.py:77 --sd; the rate of every block under the models'
    # drop_path_schedule "constant" (SPT models/vit.py:114-119)
    # augmentation (None = the data set's default, docs/recipe.md)
    hflip: bool | None = None  # SPT: RandomHorizontalFlip p=0.5
    crop_padding: int | None = None  # SPT: RandomCrop(img_size, padding=4)
    autoaugment: str | None = "auto"  # paper: data set's policy; "none" to disable
    erasing_p: float = 0.25  # paper: random erasing p=0.25, max area 0.4, aspect 0.3
    erasing_fill: str = "spt"  # SPT main.py:212-214: the raw channel mean written into the
    # normalised image ("spt"); "mean": normalised 0, the data set's mean colour (checked by
    # lkca.data.augment.AugmentConfig, like autoaugment)
    mix_prob: float = 0.5  # SPT --mix_prob: mix half of the batches
    cutmix_prob: float = 0.5  # SPT: CutMix or Mixup with prob 0.5 each when mixing
    mixup_alpha: float = 1.0  # SPT --alpha
    cutmix_beta: float = 1.0  # SPT --beta
    # engine
    seed: int = 0  # SPT
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    compile: bool = False
    eval_batch_size: int = 500
    max_steps_per_epoch: int | None = None  # cap (for smoke tests and quick looks)
    stop_after_epochs: int | None = None  # save and exit after this many epochs (time-limited
    # job slots); continue later with --resume
    progress: bool = True
    # how LKCA's impl="auto" chooses: autotune | rule | conv | toeplitz | fft (docs/benchmarks.md,
    # "How auto chooses"); the choices made are recorded and replayed on --resume
    impl_policy: str = "autotune"
    # fp32 | tf32 | bf16 | fp16: the forward's autocast and TF32 (docs/recipe.md "Precision"); the
    # authors trained in fp32 (SPT main.py has no autocast); refused as a change on --resume
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_types(self)
        check_device_name(self.device, "device")  # the spelling; resolve_device: this machine's
        check_positive(self, ("epochs", "batch_size", "eval_batch_size"))
        if not self.epoch_passes > 0:
            raise ConfigError(f"epoch_passes must be > 0 (3 in the paper's recipe), got "
                              f"{self.epoch_passes}")
        if self.warmup_lr < 0 or self.min_lr < 0:
            raise ConfigError(f"warmup_lr and min_lr must be >= 0 (got {self.warmup_lr}, "
                              f"{self.min_lr})")
        check_positive(self, ("grad_clip", "max_steps_per_epoch", "stop_after_epochs"), null_ok=True)
        check_choice("impl_policy", self.impl_policy, IMPL_POLICIES)
        check_choice("precision", self.precision, PRECISIONS)
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        for name in ("erasing_p", "mix_prob", "cutmix_prob", "label_smoothing", "drop_path"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"lr must be > 0 and weight_decay >= 0 (got {self.lr}, "
                              f"{self.weight_decay})")
        check_model_args(self.model, self.model_args)

    @property
    def out_dir(self) -> Path:
        """The run directory: ``out``, or ``runs/<dataset>-<model>``."""
        return Path(self.out or f"runs/{self.dataset}-{self.model}")

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain YAML-able values (what ``config.yaml`` holds)."""
        return asdict(self)


# model_args keys lkca train sets itself, and what sets them (a config may not set them too)
ENGINE_MODEL_ARGS = {
    "img_size": "the data set's image size (the model is built for its images)",
    "num_classes": "the data set's number of classes",
    "in_chans": "the data set's channels",
}


def check_model_args(model: str, model_args: dict[str, Any]) -> None:
    """ConfigError (one line) for ``model_args`` that the model's own config dataclass does not
    take: a key lkca train sets itself (:data:`ENGINE_MODEL_ARGS`), an unknown key (the closest
    suggested), a value of the wrong type or not finite (the type checker of every config field,
    :func:`lkca.config.typecheck.check_fields`). Ranges and combinations are the dataclass's own
    ``__post_init__``, met when the model is first built (on the meta device, before the run)."""
    if "drop_path_rate" in model_args:  # the engine passes drop_path as drop_path_rate
        raise ConfigError("model_args.drop_path_rate is set by the drop_path field; set "
                          f"drop_path: {model_args['drop_path_rate']} instead")
    for key in model_args:
        if key in ENGINE_MODEL_ARGS:
            raise ConfigError(f"model_args.{key} is set by lkca train from "
                              f"{ENGINE_MODEL_ARGS[key]}; remove it from model_args")
    try:
        cls = model_config_class(model)
    except ValueError:  # an unknown model: named by the engine (resolve_name) with suggestions
        return
    if cls is not None:
        check_fields(model_args, cls, "model_args.")


# The embedded default job (`lkca train` with no arguments): a ViT-LKCA on scikit-learn's digits,
# sized to reach >= 95% test accuracy in under 3 minutes on a 2-core CPU. Digits are 8x8 and not
# mirror-symmetric: patch 1 (an 8x8 grid as in the paper), no flip, no AutoAugment.
DIGITS_DEFAULTS: dict[str, Any] = dict(
    model="lkca_digits",
    dataset="digits",
    epochs=20,
    epoch_passes=1.0,  # one pass per epoch: the demo's 20 epochs were tuned so
    warmup_epochs=2,
    batch_size=64,
    lr=2e-3,
    autoaugment="none",
    erasing_p=0.0,
    mix_prob=0.0,
    drop_path=0.0,
    weight_decay_1d=False,  # biases and norm gains undecayed, as the demo was tuned
)


def build_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                 sets: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the YAML file (if any), then ``overrides`` (the short flags; ``None``: not
    given), then ``sets`` (``--set``, parsed by :func:`lkca.config.parse_overrides`).

    With neither a file nor a data set chosen, the embedded digits job is the starting point.
    """
    overrides = merge({k: v for k, v in (overrides or {}).items() if v is not None}, sets or {})
    base: dict[str, Any] = {}
    if path is None and overrides.get("dataset", "digits") == "digits":
        base = dict(DIGITS_DEFAULTS)
    return load_config(TrainConfig, path, overrides, base=base)
