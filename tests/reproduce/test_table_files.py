"""A table of your own: each row reads the runs of its own config and nothing else, and the
table file is read by the bounded reader (an alias bomb, deep nesting, a key twice, a
non-finite reference value, a huge file: one line each, exit 2, nothing created)."""

from __future__ import annotations

import json

from reproduce_kit import DIGITS
from tiny_train import assert_refused

from lkca.analysis.paper_report import render, tables_csv
from lkca.reproduce.plan import plan_runs
from lkca.reproduce.table_spec import load_table_spec


def _two_rows(folder):
    """Rows "one" (d1.yaml) and "two" (d2.yaml): digits configs differing only in lr."""
    for name, lr in (("d1", "1.0e-3"), ("d2", "2.0e-3")):
        (folder / f"{name}.yaml").write_text(f"base: {DIGITS}\nlr: {lr}\nepochs: 2\n")
    spec = folder / "t.yaml"
    spec.write_text("title: two lrs\nrows:\n  - row: one\n    config: d1.yaml\n"
                    "  - row: two\n    config: d2.yaml\n")
    return spec


def _finished(run, top1: float) -> None:
    """A finished run of ``run`` (a PlannedRun) that reached ``top1``."""
    run.out.mkdir(parents=True)
    (run.out / "config.yaml").write_text(json.dumps(run.resolved))  # JSON is YAML
    (run.out / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "test_top1": top1}) + "\n" for e in (1, 2)))
    (run.out / "summary.json").write_text(json.dumps({"top1": top1, "best_top1": top1,
                                                      "epochs": 2}))


def test_each_row_reads_the_runs_of_its_own_config(tmp_path):
    table, configs = load_table_spec(_two_rows(tmp_path))
    runs = plan_runs(configs, 1, tmp_path / "runs")
    by_row = {run.rows[0]: run for run in runs}
    _finished(by_row["one"], 17.5)
    _finished(by_row["two"], 10.28)
    csv = tables_csv([table], tmp_path / "runs").splitlines()
    one = next(line for line in csv if ",one," in line)
    two = next(line for line in csv if ",two," in line)
    assert ",17.5," in one and "10.28" not in one and "d1/seed0" in one, one
    assert ",10.28," in two and "17.5" not in two and "d2/seed0" in two, two
    md = render([table], tmp_path / "runs")
    assert "17.50" in md and "10.28" in md


def test_a_run_of_another_setting_fills_no_row(tmp_path):
    table, configs = load_table_spec(_two_rows(tmp_path))
    run = plan_runs(configs, 1, tmp_path / "runs")[0]
    run.resolved["epochs"] = 3  # the same model, trained another length: not this row's run
    _finished(run, 50.0)
    assert "50" not in tables_csv([table], tmp_path / "runs")


def _refused(capsys, tmp_path, text: str, expected: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    assert_refused(capsys, ["reproduce", "--table", str(spec), "--runs", str(tmp_path / "runs"),
                            "--dry-run"], expected, tmp_path)


def test_table_files_are_read_within_bounds(tmp_path, capsys):
    _two_rows(tmp_path)
    bomb = "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    _refused(capsys, tmp_path, bomb + "rows: *i\n", "expands to more than 100000 values")
    _refused(capsys, tmp_path, "rows: " + "[" * 10_000 + "]" * 10_000,
             "nests deeper than 32 levels")
    _refused(capsys, tmp_path, "rows:\n  - {row: one, config: d1.yaml}\nrows: []\n",
             "key 'rows' is given twice (lines 1 and 3)")
    _refused(capsys, tmp_path, "rows:\n  - {row: one, config: d1.yaml, paper: .nan}\n",
             "holds the non-finite number nan where a finite number belongs")
    _refused(capsys, tmp_path, "rows:\n" + "  - {row: one, config: d1.yaml}\n" * 10_000,
             "bytes, over the 262144 bytes lkca reads from such a file")


def test_reproduce_bounds_its_numbers(tmp_path, capsys):
    spec = _two_rows(tmp_path)
    argv = ["reproduce", "--table", str(spec), "--runs", str(tmp_path / "runs"), "--dry-run"]
    assert_refused(capsys, [*argv, "--seeds", "100000000"], "--seeds must be at most 100",
                   tmp_path)
    for bad in ("nan", "-5"):
        assert_refused(capsys, [*argv, "--images-per-s", bad],
                       "--images-per-s must be a positive number", tmp_path)
