"""Training configuration: one dataclass, YAML files that extend a base recipe, CLI overrides.

The defaults are the paper's classification recipe (section 4.1); values the paper does not give
come from the recipe it follows, "Vision Transformer for Small-Size Datasets" (SPT, repository
aanna0701/SPT_LSA_ViT, main.py and utils/dataloader.py), as DESIGN.md section 6 lists.
``configs/cls/base.yaml`` spells the same recipe out for readers (a test keeps them equal).
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from lkca.errors import ConfigError


@dataclass
class TrainConfig:
    """Every knob of a classification run. YAML keys and ``lkca train`` flags use these names."""

    # what to train
    model: str = "vit_lkca_2p7m"
    model_args: dict[str, Any] = field(default_factory=dict)  # overrides of the model's config
    dataset: str = "cifar10"
    data_dir: str | None = None
    out: str | None = None  # default runs/<dataset>-<model>
    # optimisation (paper section 4.1)
    epochs: int = 100  # paper
    warmup_epochs: int = 10  # paper: linear warm-up then cosine, per iteration; capped at epochs
    batch_size: int = 128  # paper (global batch over all processes), drop_last as SPT
    lr: float = 1e-3  # paper
    min_lr: float = 0.0  # cosine annealed to zero (paper gives no floor)
    weight_decay: float = 0.05  # paper
    skip_nonfinite: bool = False  # skip steps whose loss is NaN/inf (counted) instead of stopping
    grad_clip: float | None = None  # max gradient norm; None = off (neither paper nor SPT clip)
    ema_decay: float | None = None  # None = off; e.g. 0.9999
    # regularisation
    label_smoothing: float = 0.1  # SPT --smoothing
    drop_path: float = 0.1  # SPT --sd (max stochastic-depth rate)
    # augmentation (None = the data set's default, DESIGN.md section 6)
    hflip: bool | None = None  # SPT: RandomHorizontalFlip p=0.5
    crop_padding: int | None = None  # SPT: RandomCrop(img_size, padding=4)
    autoaugment: str | None = "auto"  # paper: data set's policy; "none" to disable
    erasing_p: float = 0.25  # paper: random erasing p=0.25, max area 0.4, aspect 0.3
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

    def __post_init__(self) -> None:
        check_types(self)
        positive = ("epochs", "batch_size", "eval_batch_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        for name in ("erasing_p", "mix_prob", "cutmix_prob", "label_smoothing", "drop_path"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"lr must be > 0 and weight_decay >= 0 (got {self.lr}, "
                              f"{self.weight_decay})")

    @property
    def out_dir(self) -> Path:
        return Path(self.out or f"runs/{self.dataset}-{self.model}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The embedded default job (`lkca train` with no arguments): a ViT-LKCA on scikit-learn's digits,
# sized to reach >= 95% test accuracy in under 3 minutes on a 2-core CPU. Digits are 8x8 and not
# mirror-symmetric: patch 1 (an 8x8 grid as in the paper), no flip, no AutoAugment.
DIGITS_DEFAULTS: dict[str, Any] = dict(
    model="vit_lkcaonly_digits",
    dataset="digits",
    epochs=20,
    warmup_epochs=2,
    batch_size=64,
    lr=2e-3,
    autoaugment="none",
    erasing_p=0.0,
    mix_prob=0.0,
    drop_path=0.0,
)


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config file; ``base: other.yaml`` (relative to the file) is merged underneath."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}; fix its syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value")
    base = data.pop("base", None)
    if base is None:
        return data
    merged = load_yaml(path.parent / base)
    model_args = {**merged.get("model_args", {}), **data.get("model_args", {})}
    merged.update(data)
    if model_args:
        merged["model_args"] = model_args
    return merged


def build_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Defaults, then the YAML file (if any), then non-None ``overrides`` (CLI flags).

    With neither a file nor a data set chosen, the embedded digits job is used.
    """
    values: dict[str, Any] = {}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if path is not None:
        values.update(load_yaml(path))
    elif overrides.get("dataset", "digits") == "digits":
        values.update(DIGITS_DEFAULTS)
    values.update(overrides)
    reject_unknown_keys(values, field_names(), path)
    return TrainConfig(**values)


def save_yaml(cfg: Any, path: Path) -> None:  # a TrainConfig or SegConfig (has to_dict)
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def check_types(cfg: Any) -> None:
    """Validate a config dataclass's values against its type hints, coercing where YAML is loose:
    ints are accepted for floats, lists for fixed-length tuples."""
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        value, expected = getattr(cfg, f.name), hints[f.name]
        if typing.get_origin(expected) is tuple:
            kinds = typing.get_args(expected)
            if (not isinstance(value, (list, tuple)) or len(value) != len(kinds)
                    or not all(_matches(v, k) or (k is float and _matches(v, int))
                               for v, k in zip(value, kinds))):
                raise ConfigError(f"{f.name} must be a list of {len(kinds)} "
                                  f"{kinds[0].__name__}s, got {value!r}")
            setattr(cfg, f.name, tuple(k(v) for v, k in zip(value, kinds)))
        elif isinstance(value, int) and not isinstance(value, bool) and _accepts(expected, float):
            setattr(cfg, f.name, float(value))
        elif not _matches(value, expected):
            raise ConfigError(f"{f.name} must be {_describe(expected)}, got {value!r} "
                              f"({type(value).__name__})")


def reject_unknown_keys(values: dict[str, Any], names: list[str], path: str | Path | None) -> None:
    """One clear line for the first key that is not a config field, with the closest suggested."""
    for key in values:
        if key not in names:
            source = f" in {path}" if path else ""
            raise ConfigError(f"unknown config key {key!r}{source}{suggest(key, names)}")


def _args(tp: Any) -> tuple[Any, ...]:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return typing.get_args(tp)
    return (tp,)


def _accepts(tp: Any, kind: type) -> bool:
    return any(a is kind for a in _args(tp))


def _matches(value: Any, tp: Any) -> bool:
    for a in _args(tp):
        if a is type(None) and value is None:
            return True
        origin = typing.get_origin(a) or a
        if origin is bool and isinstance(value, bool):
            return True
        if origin in (int, float) and isinstance(value, origin) and not isinstance(value, bool):
            return True
        if origin in (str, dict) and isinstance(value, origin):
            return True
    return False


def _describe(tp: Any) -> str:
    names = [getattr(a, "__name__", str(a)).replace("NoneType", "null") for a in _args(tp)]
    return " or ".join(names)
