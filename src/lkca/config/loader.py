"""Build a config dataclass from layers of values: defaults, a file, command-line overrides."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from lkca.config.files import merge, read_config_file
from lkca.config.typecheck import suggest
from lkca.errors import ConfigError

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def load_config(cls: type[T], path: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None,
                base: Mapping[str, Any] | None = None) -> T:
    """``cls(**values)`` with values from, later ones winning: ``base`` (a preset, e.g. the
    embedded digits job), the YAML file at ``path`` (with its ``base:`` chain) and ``overrides``
    (short flags and ``--set``; see :func:`lkca.config.overrides.parse_overrides`).

    Mappings (``model_args``) merge key by key. A key that is not a field of ``cls`` raises
    :class:`ConfigError` with the closest field suggested; types and ranges are checked by the
    dataclass itself (``__post_init__``, :func:`lkca.config.typecheck.check_types`).
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = dict(base or {})
    if path is not None:
        from_file = read_config_file(path)
        _reject_unknown(from_file, names, f" in {path}")
        values = merge(values, from_file)
    if overrides:
        _reject_unknown(overrides, names, "")
        values = merge(values, dict(overrides))
    return cls(**values)


def _reject_unknown(values: Mapping[str, Any], names: list[str], where: str) -> None:
    """One clear line for the first key that is not a config field, with the closest suggested."""
    for key in values:
        if key not in names:
            if not (isinstance(key, str) and _NAME.fullmatch(key)):  # quote a name, never content
                raise ConfigError(f"a key{where} is not a config field name (a {type(key).__name__}"
                                  "); config keys are field names such as lr or epochs")
            raise ConfigError(f"unknown config key {key!r}{where}{suggest(key, names)}")
