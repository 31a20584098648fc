"""Model registry: ``@register_model`` factories, ``create_model(name)``, ``list_models()``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from torch import nn

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
    """The canonical name of a model or alias; ValueError with close matches if unknown."""
    _load_builtin_models()
    if name in _FACTORIES:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    known = sorted([*_FACTORIES, *_ALIASES])
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ValueError(f"unknown model {name!r}; {hint}see `lkca list` or lkca.list_models()")


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
    # What rebuilds this model (read by lkca.pretrained.save_pretrained), as timm's pretrained_cfg.
    object.__setattr__(model, "create_args", {"model": canonical, **overrides})  # plain data
    return model


def list_models(pattern: str = "*", aliases: bool = False, baselines: bool = True) -> list[str]:
    """Sorted registered names matching a shell-style ``pattern`` (with aliases if asked).

    ``baselines=False`` leaves out the comparison models of ``lkca.models.baselines`` (the
    paper's Tables 4-5 rows), keeping the ViT / ViT-LKCA family.
    """
    import fnmatch

    _load_builtin_models()
    names = [*_FACTORIES, *(_ALIASES if aliases else ())]
    if not baselines:
        names = [n for n in names if not is_baseline(n)]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def is_baseline(name: str) -> bool:
    """Whether a registered model (or alias) is a comparison model of ``lkca.models.baselines``."""
    module = _FACTORIES[resolve_name(name)].__module__
    return module.startswith("lkca.models.baselines.")


def paper_figures(name: str) -> dict[str, Any]:
    """The paper's row for a registered model (params, MACs, input size); {} if none."""
    return dict(_PAPER.get(resolve_name(name), {}))


def _load_builtin_models() -> None:
    # Importing the model modules runs their @register_model decorators.
    import lkca.models.baselines  # noqa: F401
    import lkca.models.vit_sizes  # noqa: F401
