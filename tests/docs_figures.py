"""Figures of README.md and docs/ tied to the result file they come from (checked by
tests/test_docs.py, ``test_every_marked_figure_matches_its_result_file``).

Two marks, HTML comments (invisible in the rendered page):

- a figure in prose or a table: ``<!--fig FILE PATH-->98.1%<!--/fig-->``, optionally with a
  scale, ``<!--fig FILE PATH /1e6-->52.96M<!--/fig-->``; the first number between the marks
  must equal the value at PATH times the scale, rounded to as many decimals as the page shows
  (a thousands separator in the page is allowed);
- a printed output: ``<!--output FILE PATH-->`` right before a fenced block; the block's lines
  after the first (the ``$ command`` line) must be the string at PATH, line by line with runs of
  spaces counted as one.

FILE is a file of benchmarks/results/; PATH walks the JSON: keys and list indices separated by
dots (``train.top1``, ``erf_trained.trained.0``), and a list item chosen by its fields with
``rows[backbone=lkca_s_seg,head=upernet]``. The scripts of benchmarks/ write those files, so
re-measuring is re-running the script: every page follows, or this check names each figure that
no longer matches.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIG = re.compile(r"<!--fig ([^\s>]+) ([^\s>]+)(?: ([*/])([\d.e+-]+))?-->(.*?)<!--/fig-->", re.S)
OUTPUT = re.compile(r"<!--output ([^\s>]+) ([^\s>]+)-->\s*\n```\w*\n(.*?)```", re.S)
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def resolve(data: Any, path: str) -> Any:
    """The value at ``path`` (see the module docstring); KeyError naming the part not found."""
    for part in re.findall(r"[^.\[\]]+(?:\[[^\]]*\])?", path):
        m = re.fullmatch(r"([^\[]+)(?:\[([^\]]*)\])?", part)
        key, select = m.group(1), m.group(2)
        if isinstance(data, list):
            data = data[int(key)]
        elif key not in data:
            raise KeyError(f"{path}: no {key!r}")
        else:
            data = data[key]
        if select is not None:
            wanted = dict(item.split("=", 1) for item in select.split(","))
            hits = [x for x in data if all(str(x.get(k)) == v for k, v in wanted.items())]
            if len(hits) != 1:
                raise KeyError(f"{path}: {len(hits)} items match [{select}]")
            data = hits[0]
    return data


def _normalised(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.strip().splitlines()]


def check_marks(text: str, results: Path) -> list[str]:
    """Every marked figure and output of a page's ``text`` against ``results`` (a folder of
    JSON files); returns one line per problem (empty: all match)."""
    problems = []
    cache: dict[str, Any] = {}

    def value(name: str, path: str) -> Any:
        if name not in cache:
            cache[name] = json.loads((results / name).read_text())
        return resolve(cache[name], path)

    for m in FIG.finditer(text):
        name, path, op, factor, shown = m.groups()
        try:
            v = float(value(name, path))
        except (OSError, KeyError, IndexError, TypeError, ValueError) as err:
            problems.append(f"{shown!r}: {name} {path}: {err}")
            continue
        if op:
            v = v * float(factor) if op == "*" else v / float(factor)
        number = NUMBER.search(shown)
        if number is None:
            problems.append(f"{shown!r}: no number between the marks of {name} {path}")
            continue
        quoted = number.group(0)
        decimals = len(quoted.split(".")[1]) if "." in quoted else 0
        expected = f"{v:,.{decimals}f}" if "," in quoted else f"{v:.{decimals}f}"
        if quoted != expected:
            problems.append(f"{shown!r} should read {expected} ({name} {path})")
    for m in OUTPUT.finditer(text):
        name, path, block = m.groups()
        try:
            printed = value(name, path)
        except (OSError, KeyError, IndexError, TypeError) as err:
            problems.append(f"output block of {name} {path}: {err}")
            continue
        shown = _normalised(block)[1:]  # the $ command line aside
        if shown != _normalised(printed):
            problems.append(f"output block of {name} {path} differs: page {shown}, file "
                            f"{_normalised(printed)}")
    return problems


def marked_files(text: str) -> set[str]:
    """The result files a page's marks name."""
    return {m.group(1) for m in FIG.finditer(text)} | {m.group(1) for m in OUTPUT.finditer(text)}
