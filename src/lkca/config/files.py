"""Config files: YAML with ``base:`` inheritance, read with YAML 1.2 numbers.

PyYAML follows YAML 1.1, where ``3e-3`` (no dot) is a string; MMSegmentation's and timm's configs
(and people) write learning rates that way, so :class:`Loader` also reads ``3e-3``, ``1E5`` and
``1.0e5`` as floats. ``--set`` values go through the same loader (:mod:`lkca.config.overrides`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from lkca.errors import ConfigError


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads YAML 1.2 floats without a dot (``3e-3``)."""


class Dumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes strings :class:`Loader` would read as floats."""


_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
for _cls in (Loader, Dumper):  # add_implicit_resolver copies the table: yaml's own stay as they are
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT, list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """One YAML document with :data:`Loader` (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; mappings (e.g. ``model_args``) are merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a config file; ``base: other.yaml`` (relative to the file) lies underneath.

    Raises :class:`ConfigError` for a missing file, invalid YAML (with its line) or a file that
    is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
    try:
        data = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}; fix its syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value")
    base = data.pop("base", None)
    return data if base is None else merge(read_config_file(path.parent / base), data)


def dump_config(values: dict[str, Any]) -> str:
    """YAML text of plain config values (tuples as lists), keys in the given order; reads back
    with :func:`read_config_file` to the same values."""
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    return yaml.dump(plain, Dumper=Dumper, sort_keys=False)
