"""The runs of a table: which config stands for each row and data set, one run per seed, where
each run lives, and what it has reached.

The paper's Tables 1-7 are planned from the configs, never from model names written here: a
config under ``configs/cls/<dataset>/`` stands for a classification row when a run of it would
fill that row in ``lkca tables`` (same registered model, data set and architecture, the matching
of :mod:`lkca.analysis.run_index`); segmentation rows likewise from ``configs/seg/ade20k/``.
A table of your own names its configs itself (:mod:`lkca.reproduce.table_spec`).

Run directories: ``RUNS/<dataset>/<config stem>/seed<K>`` (segmentation: ``RUNS/ade20k/...``),
so tables that share a config (Table 1 and Table 4's CIFAR-10 column) share its runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lkca.analysis.paper_results import registered_name, seg_model, seg_registered
from lkca.analysis.paper_tables import ClsTable, SegTable
from lkca.analysis.run_index import cls_matches, read_run, seg_matches
from lkca.config.compare import config_difference
from lkca.errors import ConfigError, UserError
from lkca.reproduce.cost import run_length

SEG_DATASET = "ade20k"
@dataclass(frozen=True)
class TableConfig:
    """The config standing for one row of a table on one data set (None: no config found)."""

    row: str
    dataset: str
    config: Path | None
    task: str  # "cls" | "seg"


@dataclass(frozen=True)
class PlannedRun:
    """One training run: a config with a seed, in its own run directory.

    ``rows``: the table rows it fills; ``resolved``: the config as the run will save it (base
    merged, defaults filled, the seed set); ``steps`` and ``images``: optimiser steps and
    training images of the whole run (:func:`lkca.reproduce.cost.run_length`).
    """

    rows: tuple[str, ...]
    dataset: str
    config: Path
    seed: int
    out: Path
    task: str
    resolved: dict[str, Any] = field(hash=False, compare=False)
    steps: int = 0
    images: int = 0

    @property
    def name(self) -> str:
        """``<dataset>/<config stem>/seed<K>``, the run directory under the runs folder."""
        return f"{self.dataset}/{self.config.stem}/seed{self.seed}"


def resolve_config(path: Path) -> tuple[str, dict[str, Any]]:
    """(task, the config as a run of it saves it in config.yaml) of a config file."""
    from lkca.config.files import read_config_file

    raw = read_config_file(path)
    if "backbone" in raw or "iters" in raw or "head" in raw:
        from lkca.seg.config import build_seg_config

        return "seg", build_seg_config(path).to_dict()
    from lkca.train.config import build_config

    return "cls", build_config(path).to_dict()


class ConfigIndex:
    """Every config file under a folder, resolved once (``base.yaml`` files are recipes, not
    rows, and are left out)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[Path, tuple[str, dict[str, Any]]] = {}

    def resolved(self, path: Path) -> dict[str, Any]:
        """The resolved config of one file of the index."""
        if path not in self._cache:
            self._cache[path] = resolve_config(path)
        return self._cache[path][1]

    def configs(self, sub: str) -> list[tuple[Path, dict[str, Any]]]:
        """(path, resolved config) of every config file in ``folder/sub``, sorted by name."""
        found = []
        for path in sorted((self.folder / sub).glob("*.yaml")):
            if path.name == "base.yaml":
                continue
            if path not in self._cache:
                self._cache[path] = resolve_config(path)
            found.append((path, self._cache[path][1]))
        return found


def paper_table_configs(table: ClsTable | SegTable, configs_dir: Path,
                        datasets: list[str] | None = None) -> list[TableConfig]:
    """The config of each row (x data set) of a paper table, found by what it trains.

    Raises :class:`UserError` when two configs stand for the same row (say which).
    """
    index = ConfigIndex(configs_dir)
    found: list[TableConfig] = []
    if isinstance(table, ClsTable):
        for ds in datasets or list(table.datasets):
            candidates = index.configs(f"cls/{ds}")
            for row in table.rows:
                name = registered_name(row)
                hits = [] if name is None else [
                    path for path, cfg in candidates if cls_matches(cfg, name, ds, row.model_args)]
                found.append(TableConfig(row.row, ds, _one(hits, f"{row.row} on {ds}"), "cls"))
        return found
    candidates = index.configs(f"seg/{SEG_DATASET}")
    for seg_row in table.rows:
        spec = seg_model(seg_row)
        length = table.run_iters or seg_row.iters  # one run per backbone and head, or per row
        hits = [] if spec is None or not seg_registered(seg_row) else [
            path for path, cfg in candidates
            if seg_matches(cfg, spec.name, spec.model_args, seg_row.head, length)]
        label = f"{seg_row.backbone} {seg_row.head} {seg_row.iters}"
        config = _one(hits, label)
        if config is not None and not evaluates_at(index.resolved(config), seg_row.iters):
            raise UserError(f"{config} does not evaluate after iteration {seg_row.iters}, which "
                            f"the row {label} reads; add {seg_row.iters} to its eval_iters")
        found.append(TableConfig(label, SEG_DATASET, config, "seg"))
    return found


def evaluates_at(resolved: dict[str, Any], it: int) -> bool:
    """Whether a resolved segmentation config's run evaluates after iteration ``it``
    (:meth:`lkca.seg.config.SegConfig.evaluates_at`)."""
    from lkca.seg.config import SegConfig

    return SegConfig(**resolved).evaluates_at(it)


def _one(paths: list[Path], what: str) -> Path | None:
    if len(paths) > 1:
        names = ", ".join(str(p) for p in paths)
        raise UserError(f"{names} all train the paper's row {what}; keep one of them in that "
                        "folder (or reproduce your variant with a table of your own)")
    return paths[0] if paths else None


def plan_runs(table_configs: list[TableConfig], seeds: int, runs_dir: Path) -> list[PlannedRun]:
    """One run per (config, seed 0..seeds-1); a config standing for several rows is run once."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    rows: dict[Path, list[str]] = {}  # in the table's order
    for tc in table_configs:
        if tc.config is not None:
            rows.setdefault(tc.config.resolve(), []).append(tc.row)
    runs = []
    for key in rows:
        task, resolved = resolve_config(key)
        dataset = resolved.get("dataset", SEG_DATASET) if task == "cls" else SEG_DATASET
        steps, images = run_length(task, resolved)
        for seed in range(seeds):
            out = (runs_dir / dataset / key.stem / f"seed{seed}").absolute()
            runs.append(PlannedRun(tuple(rows[key]), dataset, key, seed, out, task,
                                   dict(resolved, seed=seed, out=str(out)), steps, images))
    return runs


@dataclass(frozen=True)
class RunState:
    """What a run directory holds: "finished", "resume" (a checkpoint to continue from), "new"
    or "conflict" (it holds a run of another config: ``detail`` says which key differs);
    ``done``/``total``: epochs or iterations reached."""

    kind: str
    done: int = 0
    total: int = 0
    detail: str = ""


def run_state(run: PlannedRun) -> RunState:
    """The state of ``run``'s directory (a complete summary.json, as ``lkca tables`` reads it,
    is finished)."""
    found = read_run(run.out)
    if found is None:
        if (run.out / "config.yaml").exists():
            return RunState("conflict", detail=f"{run.out / 'config.yaml'} is not a readable run "
                                               "config; move the folder away")
        return RunState("new", total=run.steps)
    differs = config_difference(found.config, run.resolved)
    if differs:
        return RunState("conflict", found.done, found.total,
                        f"{run.out} holds a run of another config ({differs}); move it away or "
                        "choose another --runs")
    if found.finished:
        return RunState("finished", found.done, found.total)
    if (run.out / "checkpoints" / "last.pt").is_file():
        return RunState("resume", found.done, found.total)
    return RunState("new", 0, found.total)


def default_configs_dir() -> Path:
    """The repository's ``configs/`` beside the source tree, else ``./configs``."""
    here = Path(__file__).resolve().parents[3] / "configs"
    return here if (here / "cls").is_dir() else Path("configs")


def check_configs_dir(path: Path) -> Path:
    """``path`` if it holds ``cls/`` or ``seg/`` config folders, else a one-line error."""
    if not (path / "cls").is_dir() and not (path / "seg").is_dir():
        raise ConfigError(f"{path} holds no cls/ or seg/ config folders; pass --configs DIR (the "
                          "repository's configs/ folder)")
    return path
