"""Config files: YAML with ``base:`` inheritance, read with YAML 1.2 numbers.

PyYAML follows YAML 1.1, where ``3e-3`` (no dot) is a string; MMSegmentation's and timm's configs
(and people) write learning rates that way, so the loader also reads ``3e-3``, ``1E5`` and
``1.0e5`` as floats. ``--set`` values go through the same loader (:mod:`lkca.config.overrides`).

A config is read by the one bounded reader of every file lkca reads (:mod:`lkca.bounded_files`):
a file over its size, a key given twice in one mapping (YAML would silently keep the last), a
document nested deeper than its depth, expanding (through aliases) to more than its values or
referring to itself is refused before anything walks it (docs/errors.md). Non-finite numbers are
left to the config's own type check, which names the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lkca.bounded_files import Dumper, FileLimit, parse_yaml, read_yaml
from lkca.errors import ConfigError

__all__ = ["dump_config", "merge", "parse_yaml", "read_config_file"]


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; mappings (e.g. ``model_args``) are merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping in a config file; ``base: other.yaml`` (relative to the file) lies underneath.

    Raises :class:`ConfigError` for a missing or unreadable file, a directory, text that is not
    UTF-8, invalid YAML (with its line and problem), YAML over the loader's bounds, a ``base:``
    chain that loops, or a file that is not a mapping. No message quotes the file's content.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; pass a YAML file")
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
    if path.resolve() in _chain:
        raise ConfigError(f"config file {path}: its base: chain loops back to itself; remove the "
                          "loop")
    try:
        data = read_yaml(path, finite=False) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {path} ({err.strerror or err}); check the "
                          "path and its permissions") from None
    except FileLimit as err:
        fix = "fix its syntax" if "valid YAML" in err.problem else (
            "pass a YAML config file" if "regular file" in err.problem or "bytes" in err.problem
            else "pass a YAML file saved as UTF-8" if "UTF-8" in err.problem else "fix it")
        where = f" (line {err.line})" if err.line is not None else ""
        raise ConfigError(f"config file {path}: {err.problem}{where}; {fix}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"config file {path}: base must be a file name, got "
                          f"{type(base).__name__}")
    return merge(read_config_file(path.parent / base, (*_chain, path.resolve())), data)


def dump_config(values: dict[str, Any]) -> str:
    """YAML text of plain config values (tuples as lists), keys in the given order; reads back
    with :func:`read_config_file` to the same values."""
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    return yaml.dump(plain, Dumper=Dumper, sort_keys=False)
