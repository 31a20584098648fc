"""A table of your own for ``lkca reproduce --table FILE.yaml``: rows, each a config, optionally
with a reference value (docs/reproduce.md, "A table of your own")::

    title: Digits, one block vs two
    rows:
      - row: ViT-LKCA, 1 block        # the label printed in the table
        config: digits_d1.yaml        # an `lkca train` or `lkca seg train` config, relative
        paper: 97.5                   # optional: top-1 (classification) or [aAcc, top-10 mIoU]
      - row: ViT-LKCA, 2 blocks
        config: digits_d2.yaml

All rows train one task; classification rows one data set. The table is rendered by the same
code as the paper's (:mod:`lkca.analysis.paper_report`): a run fills a row only when it is a run
of the row's own config (every key but how it was executed and its seed), so two rows of one
model that differ in any setting (``lr``) each read their own runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lkca.analysis.paper_tables import ClsRow, ClsTable, SegBackbone, SegRow, SegTable
from lkca.analysis.run_index import architecture_args
from lkca.bounded_files import FileLimit, read_yaml
from lkca.errors import ConfigError
from lkca.reproduce.plan import SEG_DATASET, TableConfig, resolve_config

ROW_KEYS = ("row", "config", "paper")


def load_table_spec(path: str | Path) -> tuple[ClsTable | SegTable, list[TableConfig]]:
    """The table described by the YAML file ``path`` and the config of each of its rows."""
    path = Path(path)
    try:
        spec = read_yaml(path)
    except FileNotFoundError:
        raise ConfigError(f"table file {path} does not exist; pass a YAML table file or a paper "
                          "table number 1-7") from None
    except OSError as err:
        raise ConfigError(f"cannot read table file {path} ({err.strerror or err}); pass a YAML "
                          "table file or a paper table number 1-7") from None
    except FileLimit as err:
        where = f" (line {err.line})" if err.line is not None else ""
        raise ConfigError(f"table file {path}: {err.problem}{where}; fix the table file "
                          "(docs/reproduce.md, \"A table of your own\")") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("rows"), list) or not spec["rows"]:
        raise ConfigError(f"table file {path} needs `rows:`, a list of {{row, config}} mappings "
                          "(docs/reproduce.md)")
    unknown = sorted(set(spec) - {"title", "rows"})
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in table file {path}; use title and rows")
    title = str(spec.get("title") or path.stem)
    entries = [_row_entry(path, i, entry) for i, entry in enumerate(spec["rows"], 1)]
    tasks = {task for _, _, task, _, _ in entries}
    if len(tasks) > 1:
        raise ConfigError(f"table file {path} mixes classification and segmentation configs; "
                          "make one table per task")
    if tasks == {"seg"}:
        return _seg_table(title, entries)
    datasets = sorted({cfg["dataset"] for _, _, _, cfg, _ in entries})
    if len(datasets) > 1:
        raise ConfigError(f"table file {path} has rows on {', '.join(datasets)}; a table of your "
                          "own holds one data set: make one table per data set")
    return _cls_table(title, datasets[0], entries)


def _row_entry(path: Path, i: int, entry: Any) -> tuple[str, Path, str, dict[str, Any], Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("row"), str) or not isinstance(
            entry.get("config"), str):
        raise ConfigError(f"row {i} of table file {path} needs `row: LABEL` and `config: FILE`")
    unknown = sorted(set(entry) - set(ROW_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in row {i} of table file {path}; use "
                          f"{', '.join(ROW_KEYS)}")
    config = (path.parent / entry["config"]).resolve()
    task, resolved = resolve_config(config)
    paper = entry.get("paper")
    ok = paper is None or (task == "cls" and _number(paper)) or (
        task == "seg" and isinstance(paper, list) and len(paper) == 2 and all(map(_number, paper)))
    if not ok:
        want = "a number (top-1 %)" if task == "cls" else "[aAcc, top-10 mIoU]"
        raise ConfigError(f"`paper` of row {i} of table file {path} must be {want}, got {paper!r}")
    return entry["row"], config, task, resolved, paper


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _cls_table(title: str, dataset: str, entries) -> tuple[ClsTable, list[TableConfig]]:
    from lkca.data import dataset_info

    info = dataset_info(dataset)
    rows = tuple(ClsRow(label, (None if paper is None else float(paper),), None, None,
                        model=cfg["model"], model_args=architecture_args(cfg), config=cfg)
                 for label, _, _, cfg, paper in entries)
    configs = [TableConfig(label, dataset, config, "cls") for label, config, _, _, _ in entries]
    return ClsTable(0, title, (dataset,), info.img_size, info.num_classes, rows), configs


def _seg_table(title: str, entries) -> tuple[SegTable, list[TableConfig]]:
    rows = tuple(SegRow(label, int(cfg["iters"]), cfg["head"],
                        None if paper is None else float(paper[0]),
                        None if paper is None else float(paper[1]), None, None,
                        model=SegBackbone(cfg["backbone"], architecture_args(cfg)), config=cfg)
                 for label, _, _, cfg, paper in entries)
    configs = [TableConfig(label, SEG_DATASET, config, "seg") for label, config, _, _, _ in entries]
    crop = int(entries[0][3]["crop_size"])
    return SegTable(0, title, rows, crop_size=crop), configs
