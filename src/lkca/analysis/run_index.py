"""Find training runs under a folder and read what they reached (the run directory of
docs/design.md).

A run directory holds ``config.yaml`` (the fully resolved config) and, once it has finished,
``summary.json``; ``metrics.jsonl`` has one record per epoch (classification) or evaluation
(segmentation). A run counts as *finished* when its summary exists and it trained its configured
length (classification: the last epoch of metrics.jsonl, or the summary's ``epochs`` when there
is no metrics file, reaches ``epochs`` of the config; segmentation: the summary's ``iters``
reaches the config's ``iters`` and it has an mIoU). Anything else is *running* (or stopped).
A segmentation run's evaluations (its metrics.jsonl records by iteration) are read too: the rows
of Tables 6-7 are evaluations of one run (:meth:`Run.evaluation`).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lkca.bounded_files import MAX_JSON_BYTES, FileLimit, parse_json, read_json, read_text, read_yaml
from lkca.config.compare import config_difference

# model_args keys that do not change the architecture: a run with only these still counts as the
# registered model (anything else, e.g. depth or mixers, is another model).
NEUTRAL_MODEL_ARGS = frozenset({"lkca_impl", "drop_path_rate", "img_size", "init",
                                "drop_path_schedule"})


@dataclass(frozen=True)
class Run:
    """One run directory. ``task`` is "cls" or "seg"; ``done``/``total`` count epochs or iters."""

    path: Path
    task: str
    config: dict[str, Any] = field(hash=False)
    summary: dict[str, Any] | None = field(hash=False)
    done: int
    total: int
    mtime: float
    evaluations: dict[int, dict[str, Any]] = field(default_factory=dict, hash=False)

    def evaluation(self, it: int) -> dict[str, Any] | None:
        """A segmentation run's metrics after iteration ``it``: its metrics.jsonl record of that
        iteration, else its summary when ``it`` is its last iteration and it finished; None when
        it has not evaluated there (yet)."""
        if it in self.evaluations:
            return self.evaluations[it]
        return self.summary if self.finished and it == self.total else None

    @property
    def seed(self) -> int | None:
        """The run's seed (runs of one config with different seeds are repetitions)."""
        seed = self.config.get("seed")
        return seed if isinstance(seed, int) else None

    @property
    def finished(self) -> bool:
        if self.summary is None or self.done < self.total:
            return False
        return self.task == "cls" or self.summary.get("mIoU") is not None

    def status(self) -> str:
        """"finished" or "running (done/total epochs|iters)"."""
        if self.finished:
            return "finished"
        unit = "epochs" if self.task == "cls" else "iters"
        return f"running ({self.done}/{self.total} {unit})"


MAX_DEPTH = 32  # folder levels find_runs descends below its root (runs/<group>/<run> uses 2)


class RunRecordWarning(UserWarning):
    """A folder under the runs that holds a run's files whose records are damaged (a wrong type,
    a non-finite count): it is left out of the tables, named, and every other run is read."""


class _Damaged(Exception):
    """Why a run folder's records cannot be read."""


def find_runs(root: str | Path) -> list[Run]:
    """Every run directory under ``root`` (at most :data:`MAX_DEPTH` levels, links not
    followed), newest first; a damaged one is left out with a :class:`RunRecordWarning`
    naming it."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [run for folder in _folders_with_config(root) if (run := read_run(folder)) is not None]
    return sorted(runs, key=lambda r: r.mtime, reverse=True)


def _folders_with_config(root: Path) -> list[Path]:
    """The folders under ``root`` holding a ``config.yaml``, walked without recursion."""
    found, stack = [], [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name == "config.yaml" and entry.is_file(follow_symlinks=False):
                found.append(folder)
            elif entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
                else:
                    warnings.warn(f"{entry.path}: not searched for runs (deeper than "
                                  f"{MAX_DEPTH} folders under {root})", RunRecordWarning,
                                  stacklevel=2)
    return sorted(found)


def read_run(path: Path) -> Run | None:
    """A :class:`Run` for ``path``; None if its config is missing, unreadable or not a run's,
    and None with a :class:`RunRecordWarning` naming it when its records are damaged."""
    try:
        return _read_run(path)
    except _Damaged as err:
        warnings.warn(f"{path}: left out of the tables ({err}); fix or remove that run folder",
                      RunRecordWarning, stacklevel=2)
        return None


def _read_run(path: Path) -> Run | None:
    try:
        config = read_yaml(path / "config.yaml", finite=False) or {}
    except (OSError, FileLimit):
        return None
    if not isinstance(config, dict):
        return None
    summary = _read_json(path / "summary.json")
    if "backbone" in config and "iters" in config:
        evaluations = _evaluations(path / "metrics.jsonl")
        done = _count((summary or {}).get("iters") or max(evaluations, default=0), "summary iters")
        return Run(path, "seg", config, summary, done, _count(config["iters"], "config iters"),
                   _mtime(path), evaluations)
    if "model" in config and "dataset" in config and "epochs" in config:
        return Run(path, "cls", config, summary, _epochs_done(path, summary),
                   _count(config["epochs"], "config epochs"), _mtime(path))
    return None


def _count(value: Any, what: str) -> int:
    """``value`` as a count (a whole number >= 0, a float such as 2.0 included), or _Damaged."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Damaged(f"its {what} is {str(value)[:40]!s}, not a count")
    return value


def architecture_args(config: dict[str, Any]) -> dict[str, Any]:
    """A config's ``model_args`` that change the architecture (neutral keys left out)."""
    args = config.get("model_args") or {}
    return {k: v for k, v in args.items() if k not in NEUTRAL_MODEL_ARGS}


def cls_matches(config: dict[str, Any], model: str, dataset: str,
                model_args: dict[str, Any] | None = None) -> bool:
    """Whether a classification config (a run's ``config.yaml``) trains the registered ``model``
    (aliases count as their model) on ``dataset`` with exactly the architecture ``model_args``
    (neutral keys aside; default none: the registered model as it is)."""
    from lkca.models.registry import resolve_name

    if config.get("dataset") != dataset or architecture_args(config) != (model_args or {}):
        return False
    try:
        return resolve_name(str(config.get("model"))) == resolve_name(model)
    except ValueError:  # not registered: matches no row
        return False


def same_config(config: dict[str, Any], row_config: dict[str, Any]) -> bool:
    """Whether a run's ``config.yaml`` is a run of ``row_config`` (a row of a table of your own):
    equal in every key but how it was executed and its seed (:func:`config_difference`)."""
    return not config_difference(config, row_config, ignore=frozenset({"seed"}))


def seg_matches(config: dict[str, Any], backbone: str, model_args: dict[str, Any], head: str,
                iters: int) -> bool:
    """Whether a segmentation config (a run's ``config.yaml``) trains ``head`` on ``backbone``
    with exactly the architecture ``model_args`` (neutral keys aside) for ``iters`` iterations."""
    return (config.get("backbone"), config.get("head"), config.get("iters")) == (
        backbone, head, iters) and architecture_args(config) == model_args


def _epochs_done(path: Path, summary: dict[str, Any] | None) -> int:
    metrics = path / "metrics.jsonl"
    if metrics.exists():
        epochs = []
        for line in _lines(metrics):
            try:
                record = parse_json(line, path, finite=False)
            except ValueError:  # a half-written last line
                continue
            if isinstance(record, dict):
                epochs.append(_count(record.get("epoch", 0), "metrics.jsonl epoch"))
        return max(epochs, default=0)
    return _count((summary or {}).get("epochs") or 0, "summary epochs")


def _evaluations(path: Path) -> dict[int, dict[str, Any]]:
    """metrics.jsonl records of a segmentation run by ``iter`` (a half-written line skipped)."""
    found: dict[int, dict[str, Any]] = {}
    for line in _lines(path):
        try:
            record = parse_json(line, path, finite=False)
        except ValueError:  # a half-written last line
            continue
        if isinstance(record, dict) and "iter" in record:
            found[_count(record["iter"], "metrics.jsonl iter")] = record
    return found


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in read_text(path, MAX_JSON_BYTES).splitlines() if line.strip()]
    except (OSError, FileLimit):
        return []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = read_json(path, finite=False)
    except (OSError, ValueError):  # FileLimit is a ValueError
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: Path) -> float:
    files = [path / "summary.json", path / "metrics.jsonl", path / "config.yaml"]
    return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)
