"""Type checking of config dataclasses against their type hints, and "did you mean" suggestions."""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from lkca.config.echo import short_repr
from lkca.errors import ConfigError

MAX_INT = 1 << 63  # the integers torch, numpy and the seeds take


def suggest(key: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""`` if none is close."""
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_types(cfg: Any) -> None:
    """Validate a config dataclass's values against its type hints, coercing where YAML is loose:
    ints are accepted for floats, lists for fixed-length tuples, ``list[X]`` holds X's; a float
    must be finite (YAML's ``.nan`` and ``.inf`` are refused). Raises :class:`ConfigError` naming
    the field, the expected type and the value given (quoted to at most 200 characters)."""
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        value, expected = getattr(cfg, f.name), hints[f.name]
        if typing.get_origin(expected) is tuple:
            kinds = typing.get_args(expected)
            if (not isinstance(value, (list, tuple)) or len(value) != len(kinds)
                    or not all(_matches(v, k) or (k is float and _matches(v, int))
                               for v, k in zip(value, kinds))):
                raise ConfigError(f"{f.name} must be a list of {len(kinds)} "
                                  f"{kinds[0].__name__}s, got {short_repr(value)}")
            setattr(cfg, f.name, tuple(k(v) for v, k in zip(value, kinds)))
        elif isinstance(value, int) and not isinstance(value, bool) and _accepts(expected, float):
            setattr(cfg, f.name, float(value))
        elif not _matches(value, expected):
            raise ConfigError(f"{f.name} must be {describe(expected)}, got {short_repr(value)} "
                              f"({type(value).__name__})")
        for v in getattr(cfg, f.name) if isinstance(getattr(cfg, f.name), tuple) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{f.name} must be a finite number, got {v}")
            if isinstance(v, int) and not isinstance(v, bool) and not -MAX_INT <= v < MAX_INT:
                raise ConfigError(f"{f.name} must be an integer of 64 bits (below 2**63), got "
                                  f"{short_repr(v)}")


def check_fields(values: dict[str, Any], cls: type, prefix: str) -> None:
    """Validate a mapping of some of ``cls``'s fields (a dataclass: a model's config) against
    its type hints, as :func:`check_types` does for a config: an unknown key with the closest
    field suggested, a value of the wrong type, a non-finite float. ``prefix`` names the mapping
    in messages (``"model_args."``)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key, value in values.items():
        if key not in hints:
            shown = key if isinstance(key, str) and key.isidentifier() and len(key) <= 64 else (
                short_repr(key))
            raise ConfigError(f"unknown key {prefix}{shown}{suggest(str(key), names)} (keys of "
                              f"{cls.__name__}: {', '.join(names)})")
        expected = hints[key]
        if not (_matches(value, expected) or (_accepts(expected, float) and _matches(value, int))):
            raise ConfigError(f"{prefix}{key} must be {describe(expected)}, got "
                              f"{short_repr(value)} ({type(value).__name__})")
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{prefix}{key} must be a finite number, got {v}")


def describe(tp: Any) -> str:
    """A type hint in words: ``int | None`` -> ``"int or null"``, ``tuple[int, int]`` -> ``"a
    list of 2 ints"``, ``list[int]`` -> ``"a list of ints"``."""
    names = []
    for a in _args(tp):
        if typing.get_origin(a) is tuple:
            kinds = typing.get_args(a)
            names.append(f"a list of {len(kinds)} {getattr(kinds[0], '__name__', 'value')}s")
        elif typing.get_origin(a) is list:
            names.append(f"a list of {typing.get_args(a)[0].__name__}s")
        else:
            names.append(getattr(a, "__name__", str(a)).replace("NoneType", "null"))
    return " or ".join(names)


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
        if origin is list and isinstance(value, list):  # list[X]: every item an X
            (item,) = typing.get_args(a)
            return all(_matches(v, item) for v in value)
        if origin is tuple and isinstance(value, (list, tuple)):
            kinds = typing.get_args(a)
            if kinds and kinds[-1] is Ellipsis:
                kinds = (kinds[0],) * len(value)
            if len(kinds) == len(value) and all(
                    _matches(v, k) or (k is float and _matches(v, int)) for v, k in zip(value, kinds)):
                return True
    return False
