"""Config files: YAML with ``base:`` inheritance, read with YAML 1.2 numbers.

PyYAML follows YAML 1.1, where ``3e-3`` (no dot) is a string; MMSegmentation's and timm's configs
(and people) write learning rates that way, so :class:`Loader` also reads ``3e-3``, ``1E5`` and
``1.0e5`` as floats. ``--set`` values go through the same loader (:mod:`lkca.config.overrides`).

A config is small, so the loader is strict and bounded: a key given twice in one mapping is
refused (YAML would silently keep the last), and a document nested deeper than
:data:`MAX_DEPTH` levels, expanding (through aliases) to more than :data:`MAX_VALUES` values or
referring to itself is refused before anything walks it (docs/errors.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from lkca.config.echo import short_repr
from lkca.errors import ConfigError

MAX_DEPTH = 32  # levels of nested mappings / lists in a config
MAX_VALUES = 100_000  # values a config expands to, aliases expanded (an alias bomb: billions)


class YAMLLimit(yaml.YAMLError):
    """A YAML document over a bound of this loader (duplicate key, depth, size, self-reference);
    ``problem`` says which, ``problem_mark`` where (when known)."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads YAML 1.2 floats without a dot (``3e-3``) and refuses a
    key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may override keys
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise YAMLLimit(f"key {short_repr(key)} is given twice (lines {seen[key]} and "
                                f"{line})", key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class Dumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes strings :class:`Loader` would read as floats."""


_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
for _cls in (Loader, Dumper):  # add_implicit_resolver copies the table: yaml's own stay as they are
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT, list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """One YAML document with :data:`Loader`, within its bounds (raises ``yaml.YAMLError``,
    :class:`YAMLLimit` for a bound)."""
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader
    except RecursionError:
        raise YAMLLimit(f"it nests deeper than {MAX_DEPTH} levels") from None
    _check_bounds(data)
    return data


def _check_bounds(data: Any) -> None:
    """YAMLLimit when ``data`` nests deeper than MAX_DEPTH, refers to itself, or expands (aliases
    counted at every use) to more than MAX_VALUES values; shared parts are counted once per use
    without being walked again, so a bomb is measured in linear time."""
    sizes: dict[int, int] = {}
    walking: set[int] = set()

    def size(value: Any, depth: int) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if depth > MAX_DEPTH:
            raise YAMLLimit(f"it nests deeper than {MAX_DEPTH} levels")
        if id(value) in walking:
            raise YAMLLimit("it refers to itself (a recursive YAML alias)")
        if id(value) not in sizes:
            walking.add(id(value))
            items = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
            total = 1
            for item in items:
                total += size(item, depth + 1)
                if total > MAX_VALUES:
                    raise YAMLLimit(f"it expands to more than {MAX_VALUES} values (YAML aliases)")
            walking.discard(id(value))
            sizes[id(value)] = total
        return sizes[id(value)]

    size(data, 0)  # raises while walking: a container's running total is checked item by item


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
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
    if path.resolve() in _chain:
        raise ConfigError(f"config file {path}: its base: chain loops back to itself; remove the "
                          "loop")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read config file {path} ({err.strerror or err}); check the "
                          "path and its permissions") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}); pass a "
                          "YAML file saved as UTF-8") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        problem = getattr(err, "problem", None) if isinstance(err, YAMLLimit) else None
        where = ", ".join(x for x in (f"line {line + 1}" if line is not None else "",
                                      problem or "") if x)
        where = f" ({where})" if where else ""
        fix = "fix it" if isinstance(err, YAMLLimit) else "fix its syntax"
        raise ConfigError(f"config file {path} is not valid YAML{where}; {fix}") from None
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
