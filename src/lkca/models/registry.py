"""Model registry: ``@register_model`` factories, ``create_model(name)``, ``list_models()``."""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable
from typing import Any

from torch import nn

from lkca.checkpoint.metadata import classifier_record, set_pretrained_cfg
from lkca.errors import CheckpointError, InvalidArgumentError
from lkca.version import older_lkca

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}
_PAPER: dict[str, dict[str, Any]] = {}


def register_model(
    name: str, *, aliases: tuple[str, ...] = (), paper: dict[str, Any] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a factory ``fn(**overrides) -> nn.Module`` under ``name`` and its aliases.

    ``paper`` holds the paper's row for the model (``row``, ``params``, ``macs``, ``img_size``,
    ``num_classes``): the target that tests and tables compare against.
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for key in (name, *aliases):
            if key in _FACTORIES or key in _ALIASES:
                raise ValueError(f"model name {key!r} is registered twice")
        _FACTORIES[name] = fn
        _ALIASES.update({alias: name for alias in aliases})
        if paper is not None:
            _PAPER[name] = dict(paper, aliases=aliases)
        return fn

    return wrap


def resolve_name(name: str) -> str:
    """The canonical name of a model or alias; :class:`~lkca.errors.InvalidArgumentError` with
    close matches if unknown."""
    _load_builtin_models()
    if name in _FACTORIES:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    known = sorted([*_FACTORIES, *_ALIASES])
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise InvalidArgumentError(f"unknown model {name!r}; {hint}see `lkca list` or lkca.list_models()")


def create_model(
    name: str, num_classes: int | None = None, img_size: int | tuple[int, int] | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model.

    ``num_classes`` and ``img_size`` default to the model's paper setting (10 classes at 32x32,
    LKCA-L: 200 at 64x64). Other keyword arguments override the model's config fields (for ViT
    models: ``dim``, ``depth``, ``mixers``, ``drop_path_rate``, ``lkca_impl`` ...).
    """
    canonical = resolve_name(name)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if img_size is not None:
        overrides["img_size"] = img_size
    model = _FACTORIES[canonical](**overrides)
    # What rebuilds this model (saved by save_pretrained and checkpoints), as timm's pretrained_cfg.
    cfg = getattr(model, "cfg", None)
    args = {k: v for k, v in overrides.items() if k not in ("num_classes", "img_size")}
    record = classifier_record(
        canonical, args, overrides.get("num_classes", getattr(cfg, "num_classes", None)),
        overrides.get("img_size", getattr(cfg, "img_size", None)),
        in_chans=int(overrides.get("in_chans", getattr(cfg, "in_chans", 3))))
    return set_pretrained_cfg(model, record)


@functools.cache
def model_config_class(name: str) -> type | None:
    """The config dataclass of a registered model (``ViTConfig``, ``CaiTConfig`` ...): the type
    of ``model.cfg`` of the model built with its defaults on the meta device (nothing
    allocated; a model whose initialisation needs data is built at its registered size); None
    for a model without one. What ``model_args`` are checked against."""
    import torch

    canonical = resolve_name(name)
    try:
        with torch.device("meta"):
            model = _FACTORIES[canonical]()
    except NotImplementedError:  # an initialisation that copies data (CrossViT): built for real,
        model = _FACTORIES[canonical]()  # at its registered size (the paper's: at most 12M)
    cfg = getattr(model, "cfg", None)
    return type(cfg) if dataclasses.is_dataclass(cfg) else None


def list_models(pattern: str = "*", aliases: bool = False, baselines: bool = True) -> list[str]:
    """Sorted registered names matching ``pattern`` (with aliases if asked).

    A pattern with a shell wildcard (``*``, ``?``, ``[``) must match the whole name
    (``vit_lkca*``); a plain word matches any name containing it (``lkca`` lists every LKCA
    model). ``baselines=False`` leaves out the comparison models of ``lkca.models.baselines`` (the
    paper's Tables 4-5 rows), keeping the ViT / ViT-LKCA family.
    """
    import fnmatch

    _load_builtin_models()
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    names = [*_FACTORIES, *(_ALIASES if aliases else ())]
    if not baselines:
        names = [n for n in names if not is_baseline(n)]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def model_aliases() -> dict[str, str]:
    """Every alias and the registered name it stands for (``{"lkca_b": "vit_lkca_2p7m", ...}``)."""
    _load_builtin_models()
    return dict(sorted(_ALIASES.items()))


def is_baseline(name: str) -> bool:
    """Whether a registered model (or alias) is a comparison model of ``lkca.models.baselines``."""
    module = _FACTORIES[resolve_name(name)].__module__
    return module.startswith("lkca.models.baselines.")


def paper_figures(name: str) -> dict[str, Any]:
    """The paper's row for a registered model (params, MACs, input size); {} if none."""
    return dict(_PAPER.get(resolve_name(name), {}))


# lkca 0.1.0 -> now. Its ``vit_lkca_<size>`` had LKCA alone in every block with a kernel per head,
# no projections, the LayerNorm on every token before pooling, at its own (dim, depth, heads); its
# ``vit_<size>`` had other widths and a position table for the patches only; its LKCA projections
# had a value bias; every ViT-family model was initialised with timm's truncated normal and had
# linearly rising stochastic depth. The names now build the authors' models (docs/models.md), so
# a 0.1.0 name becomes today's name with 0.1.0's shape and block as model options.
_LEGACY_ALIASES = {"lkca_t": "vit_lkca_1m", "lkca_b": "vit_lkca_2p7m", "lkca_l": "vit_lkca_12m",
                   "vit_lite": "vit_1m", "vit_small": "vit_2p7m"}
_LEGACY_VIT = {"500k": (80, 9, 5), "1m": (128, 8, 8), "2m": (184, 7, 8), "2p7m": (192, 9, 12),
               "4m": (220, 10, 11), "8m": (352, 8, 22)}
_LEGACY_LKCA = {"500k": (80, 18, 5), "1m": (128, 15, 8), "2m": (160, 19, 10),
                "2p7m": (192, 18, 12), "4m": (256, 15, 16), "8m": (320, 19, 20),
                "12m": (384, 21, 12)}
_LEGACY_TRAINING = {"init": "trunc_normal", "drop_path_schedule": "linear"}
# Comparison models whose 0.1.0 architecture (their family's paper, scaled to the paper's count)
# was replaced by the authors' (docs/baselines.md): 0.1.0 weights do not fit them
REBUILT_SINCE_0_1_0 = frozenset({
    "swin_t_cifar", "swin_s_cifar", "cait_t_cifar", "cait_s_cifar", "t2t_t_tiny", "t2t_s_tiny",
    "t2t_b_tiny", "mobilevitv2_t_cifar", "mobilevitv2_s_cifar", "mobilevitv2_b_tiny",
    "cvt_b_tiny", "deepvit_t_tiny", "deepvit_s_tiny", "rvt_t_tiny", "rvt_s_tiny",
    "regionvit_t_tiny", "regionvit_s_tiny", "regionvit_b_tiny", "crossvit_t_tiny",
    "crossvit_s_tiny", "xcit_t_tiny", "xcit_s_tiny", "twins_svt_s_tiny", "twins_svt_b_tiny"})
_LEGACY_LKCA_BLOCK = {"mixers": "lkca", "pool": "mean", "kernel_heads": None,
                      "lkca_projections": False, "head_norm": "tokens"}


def _shape(spec: tuple[int, int, int]) -> dict[str, Any]:
    dim, depth, heads = spec
    return {"dim": dim, "depth": depth, "num_heads": heads, "mlp_ratio": 2.0}


def legacy_model(name: str | None, overrides: dict[str, Any],
                 written_by: str | None = None) -> tuple[str | None, dict[str, Any]]:
    """The model name and overrides that rebuild, now, what lkca 0.1.0 built from ``name`` and
    ``overrides`` (as its checkpoints and ``config.json`` files store them).

    0.1.0's ``vit_lkca_<size>`` and ``vit_<size>`` keep their names with 0.1.0's shape, block
    (LKCA alone, a kernel per head, no projections; the ViT's 64-row position table), head
    (LayerNorm before pooling) and training settings (truncated-normal init, linear stochastic
    depth) as overrides, the stored overrides last; LKCA projections get 0.1.0's value bias.
    ``name=None`` (a :class:`~lkca.models.vit.ViTConfig` written out in full) gets the fields
    that did not exist in 0.1.0 at their 0.1.0 values. Comparison models are unchanged, but those
    of :data:`REBUILT_SINCE_0_1_0` raise :class:`~lkca.errors.CheckpointError`. With
    ``new_name, new_overrides = legacy_model(name, overrides)``, ``create_model(new_name,
    num_classes, img_size, **new_overrides)`` loads the 0.1.0 weights strictly
    (tests/models/test_legacy.py).
    """
    overrides = dict(overrides)
    bias = {"lkca_value_bias": True} if overrides.get("lkca_projections") else {}
    if name is None:
        return None, {"cls_pos_embed": False, "head_norm": "tokens", **_LEGACY_TRAINING, **bias,
                      **overrides}
    name = _LEGACY_ALIASES.get(name, name)
    _load_builtin_models()  # the aliases
    if _ALIASES.get(name, name) in REBUILT_SINCE_0_1_0:
        writer = older_lkca(written_by)
        raise CheckpointError(f"{name} of {writer} (its paper's architecture scaled to the "
                              "paper's count) is now built as the paper's authors build it and "
                              f"cannot take its weights; load it with {writer}")
    size = name.removeprefix("vit_lkca_")
    if name.startswith("vit_lkca_") and size in _LEGACY_LKCA:
        return name, {**_shape(_LEGACY_LKCA[size]), **_LEGACY_LKCA_BLOCK, **_LEGACY_TRAINING,
                      **bias, **overrides}
    size = name.removeprefix("vit_")
    if name.startswith("vit_") and size in _LEGACY_VIT:
        return name, {**_shape(_LEGACY_VIT[size]), "cls_pos_embed": False, **_LEGACY_TRAINING,
                      **overrides}
    return name, overrides


def _load_builtin_models() -> None:
    # Importing the model modules runs their @register_model decorators.
    import lkca.models.baselines  # noqa: F401
    import lkca.models.vit_sizes  # noqa: F401
