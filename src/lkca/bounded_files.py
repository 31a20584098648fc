"""The one reader of every YAML and JSON file lkca reads: configs, tables, run records,
pretrained records, checkpoint metadata, the lock record and the autotune cache.

Every file is read within bounds before anything walks it, so no file (a mistake or an attack)
can exhaust memory, hang the process or end in a traceback (docs/errors.md, "Files lkca reads"):

* only a regular file is read (a FIFO, ``/dev/zero`` or a directory is refused, never opened
  for a blocking read), and at most ``max_bytes`` of it (:data:`MAX_YAML_BYTES`,
  :data:`MAX_JSON_BYTES`);
* the document nests at most :data:`MAX_DEPTH` levels and expands (YAML aliases counted at each
  use) to at most :data:`MAX_VALUES` values; a YAML alias that refers to itself is refused;
* a key given twice in one mapping is refused (YAML and JSON would silently keep the last);
* a non-finite number (YAML ``.nan`` / ``.inf``, JSON ``NaN`` / ``Infinity``) is refused unless
  the caller reads a file where one is a legitimate value (a diverged run's logged loss).

The YAML loader reads YAML 1.2 numbers: PyYAML follows YAML 1.1, where ``3e-3`` (no dot) is a
string; MMSegmentation's and timm's configs (and people) write learning rates that way.

:class:`FileLimit` (a ``UserError``) names the file and what is wrong; callers that read a file
of their own kind (a config, a table) catch it to add their fix.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from lkca.errors import UserError

MAX_DEPTH = 32  # levels of nested mappings / lists
MAX_VALUES = 100_000  # values a document expands to, aliases expanded (an alias bomb: billions)
MAX_YAML_BYTES = 256 * 1024  # a config or table file (PyYAML reads ~50 kB/s of lists)
MAX_JSON_BYTES = 16 * 1024 * 1024  # a record, summary, metrics log or cache


class FileLimit(UserError):
    """A file over a bound of the reader, not a regular file, or not valid YAML / JSON;
    ``problem`` says what (without the file's name), ``line`` where when known (1-based)."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"{path}{where}: {problem}")
        self.path, self.problem, self.line = Path(path), problem, line


class _Limit(yaml.YAMLError):
    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


def _key_text(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


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
                raise _Limit(f"key {_key_text(key)} is given twice (lines {seen[key]} and {line})",
                             key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class Dumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes strings :class:`Loader` would read as floats."""


_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
for _cls in (Loader, Dumper):  # add_implicit_resolver copies the table: yaml's own stay as they are
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT, list("-+0123456789."))


def read_text(path: str | Path, max_bytes: int) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``max_bytes`` long; FileLimit
    otherwise (``FileNotFoundError`` when nothing is there, so callers can say so their way).

    The file is opened without blocking (a FIFO never hangs the reader) and checked to be a
    regular file (a device such as ``/dev/zero``, a directory or a socket is refused) before a
    byte is read."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise FileLimit(path, "is a directory, not a file") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileLimit(path, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise FileLimit(path, "is not a regular file (a FIFO, device or socket)")
        if info.st_size > max_bytes:
            raise FileLimit(path, f"is {info.st_size} bytes, over the {max_bytes} bytes lkca "
                                  "reads from such a file")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:  # grew while read
        raise FileLimit(path, f"is over the {max_bytes} bytes lkca reads from such a file")
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FileLimit(path, f"is not UTF-8 text (byte {err.start})") from None


def parse_yaml(text: str, source: str | Path = "YAML", finite: bool = True) -> Any:
    """One YAML document read with :class:`Loader`, within the bounds (FileLimit naming
    ``source`` otherwise; ``finite``: refuse ``.nan`` / ``.inf``)."""
    if len(text) > MAX_YAML_BYTES:
        raise FileLimit(source, f"is over the {MAX_YAML_BYTES} characters lkca reads as YAML")
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader
    except RecursionError:
        raise FileLimit(source, f"nests deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) if isinstance(err, _Limit) else None
        raise FileLimit(source, problem or "is not valid YAML", line) from None
    check_bounds(data, source, finite)
    return data


def parse_json(text: str | bytes, source: str | Path = "JSON", finite: bool = True) -> Any:
    """One JSON document, within the bounds; a key given twice refused; ``NaN`` / ``Infinity``
    refused when ``finite`` (FileLimit naming ``source``)."""
    if len(text) > MAX_JSON_BYTES:
        raise FileLimit(source, f"is over the {MAX_JSON_BYTES} bytes lkca reads as JSON")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _Duplicate(key)
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except _Duplicate as err:
        raise FileLimit(source, f"key {_key_text(err.key)} is given twice") from None
    except RecursionError:
        raise FileLimit(source, f"nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as err:
        line = getattr(err, "lineno", None)
        raise FileLimit(source, "is not valid JSON (corrupt or truncated)", line) from None
    check_bounds(data, source, finite)
    return data


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def read_yaml(path: str | Path, max_bytes: int = MAX_YAML_BYTES, finite: bool = True) -> Any:
    """The YAML document in the file ``path``, read within the bounds (FileLimit otherwise)."""
    return parse_yaml(read_text(path, max_bytes), path, finite)


def read_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES, finite: bool = True) -> Any:
    """The JSON document in the file ``path``, read within the bounds (FileLimit otherwise)."""
    return parse_json(read_text(path, max_bytes), path, finite)


def check_bounds(data: Any, source: str | Path = "document", finite: bool = True) -> None:
    """FileLimit when ``data`` nests deeper than MAX_DEPTH, refers to itself, expands (aliases
    counted at every use) to more than MAX_VALUES values, or holds a non-finite number (when
    ``finite``); shared parts are counted once per use without being walked again, so a bomb is
    measured in linear time."""
    sizes: dict[int, int] = {}
    walking: set[int] = set()

    def size(value: Any, depth: int) -> int:
        if not isinstance(value, (dict, list)):
            if finite and isinstance(value, float) and not math.isfinite(value):
                raise FileLimit(source, f"holds the non-finite number {value} where a finite "
                                        "number belongs")
            return 1
        if depth > MAX_DEPTH:
            raise FileLimit(source, f"nests deeper than {MAX_DEPTH} levels")
        if id(value) in walking:
            raise FileLimit(source, "refers to itself (a recursive YAML alias)")
        if id(value) not in sizes:
            walking.add(id(value))
            items = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
            total = 1
            for item in items:
                total += size(item, depth + 1)
                if total > MAX_VALUES:
                    raise FileLimit(source, f"expands to more than {MAX_VALUES} values")
            walking.discard(id(value))
            sizes[id(value)] = total
        return sizes[id(value)]

    size(data, 0)  # raises while walking: a container's running total is checked item by item
