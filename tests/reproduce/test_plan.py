"""Planning: each paper table's plan holds exactly the configs of its rows (checked against the
rows `lkca tables` shows), run directories, run lengths, states and tables of your own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from reproduce_kit import ROOT, write_digits_table

from lkca.analysis import paper_report
from lkca.analysis.paper_report import render_tables
from lkca.analysis.paper_results import SEG_READINGS, seg_reading
from lkca.analysis.paper_tables import CLS_TABLES, SEG_TABLES, TABLES, ClsTable
from lkca.errors import ConfigError, UserError
from lkca.models.registry import resolve_name
from lkca.reproduce.cost import run_length
from lkca.reproduce.plan import (
    config_difference,
    paper_table_configs,
    plan_runs,
    resolve_config,
    run_state,
)
from lkca.reproduce.reproduction import plan, plan_text
from lkca.reproduce.table_spec import load_table_spec
from lkca.seg.config import SegConfig

CONFIGS = ROOT / "configs"
FAKE = {"params": 1_000_000, "macs": 60_000_000, "token_mixing_macs": 10_000_000}


@pytest.fixture(scope="module")
def shown() -> dict[int, list[list[str]]]:
    """The rows of each table as `lkca tables` prints them (counts faked: only rows matter)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paper_report, "profile_classifier", lambda *a: dict(FAKE))
        mp.setattr(paper_report, "profile_segmentor", lambda *a: dict(FAKE))
        mp.setattr(paper_report.Profiler, "_cache", {})  # fake counts stay out of the real cache
        md = render_tables(Path("/nonexistent"))
    rows: dict[int, list[list[str]]] = {}
    number = 0
    for line in md.splitlines():
        if line.startswith("## Table "):
            number = int(line.split()[2].rstrip(":"))
        elif line.startswith("| ") and not line.startswith(("| paper row", "| backbone", "| ---")):
            rows.setdefault(number, []).append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.mark.parametrize("number", [t.number for t in CLS_TABLES])
def test_a_classification_plan_lists_exactly_the_configs_of_its_rows(number, shown):
    table = TABLES[number]
    assert isinstance(table, ClsTable)
    configs = paper_table_configs(table, CONFIGS)
    # one config per row and data set, every one found, in the table's order
    assert [(c.row, c.dataset) for c in configs] == [
        (r[0], ds) for ds in table.datasets for r in shown[number]]
    assert all(c.config is not None for c in configs)
    models = {r[0]: r[1].strip("`") for r in shown[number]}  # the model column of lkca tables
    for c in configs:
        assert c.config is not None and c.config.parent == CONFIGS / "cls" / c.dataset
        _, cfg = resolve_config(c.config)
        assert (resolve_name(cfg["model"]), cfg["dataset"]) == (models[c.row], c.dataset)
    # and no config of those folders that stands for a row of this table is left out
    used = {c.config for c in configs}
    for ds in table.datasets:
        for path in (CONFIGS / "cls" / ds).glob("*.yaml"):
            _, cfg = resolve_config(path)
            if any(resolve_name(cfg["model"]) == m for m in models.values()):
                assert path in used, path


@pytest.mark.parametrize("reading", SEG_READINGS)
@pytest.mark.parametrize("number", [t.number for t in SEG_TABLES])
def test_a_segmentation_plan_lists_exactly_the_configs_of_its_rows(number, reading, shown):
    """One-run (the default): each row's config is the 20k run of its backbone and head, which
    evaluates after the row's iterations; per-row: a config ending at the row's iterations."""
    configs = paper_table_configs(seg_reading(TABLES[number], reading), CONFIGS)
    assert [c.row for c in configs] == [" ".join(r[:3]) for r in shown[number]]
    for c, row in zip(configs, shown[number]):
        assert c.config is not None and c.config.parent == CONFIGS / "seg" / "ade20k"
        _, cfg = resolve_config(c.config)
        length = 20000 if reading == "one-run" else int(row[2])
        assert (cfg["backbone"], cfg["head"], cfg["iters"]) == (row[3].split("`")[1], row[1], length)
        assert SegConfig(**cfg).evaluates_at(int(row[2]))
        if cfg["backbone"] in ("vit_s_seg", "lkca_s_seg"):  # the ViT backbones' neck: bilinear
            assert cfg["model_args"]["neck_resample"] == "bilinear"


@pytest.mark.parametrize("number, one_run, per_row", [("6", 2, 8), ("7", 8, 16)])
def test_one_run_per_backbone_and_head_is_the_default(tmp_path, number, one_run, per_row):
    default = plan(number, tmp_path, CONFIGS)
    assert len(default.runs) == one_run and {r.steps for r in default.runs} == {20000}
    assert len(plan(number, tmp_path, CONFIGS, seg_runs="per-row").runs) == per_row
    rows = [len(r.rows) for r in default.runs]  # every row read from one of the runs
    assert sum(rows) == len(TABLES[int(number)].rows) and set(rows) == {4 if number == "6" else 2}
    with pytest.raises(UserError, match="unknown segmentation reading 'one'; choose one of"):
        plan(number, tmp_path, CONFIGS, seg_runs="one")


def test_a_config_that_skips_a_rows_evaluation_is_refused(tmp_path):
    import shutil

    shutil.copytree(CONFIGS / "seg", tmp_path / "seg")
    path = tmp_path / "seg/ade20k/upernet_vit_b_seg_20k.yaml"
    path.write_text(path.read_text().replace("eval_iters: [2000, 4000, 8000, 16000]",
                                             "eval_iters: []\neval_interval: 5000"))
    with pytest.raises(UserError, match="does not evaluate after iteration 2000, which the row "
                                        "ViT-B upernet 2000 reads; add 2000 to its eval_iters"):
        paper_table_configs(TABLES[6], tmp_path)


def test_runs_per_seed_in_stable_directories_shared_by_tables(tmp_path):
    t1 = plan("1", tmp_path, CONFIGS, seeds=2)
    t4 = plan("4", tmp_path, CONFIGS, datasets=["cifar10"])
    assert len(t1.runs) == 24 and len(t4.runs) == 10
    lkca = [r for r in t1.runs if r.config.stem == "vit_lkca_2p7m"]
    assert [r.out for r in lkca] == [(tmp_path / "cifar10/vit_lkca_2p7m/seed0").absolute(),
                                     (tmp_path / "cifar10/vit_lkca_2p7m/seed1").absolute()]
    assert [r.resolved["seed"] for r in lkca] == [0, 1]
    shared = {r.out for r in t1.runs} & {r.out for r in t4.runs}
    assert len(shared) == 4  # ViT-Lite, ViT-Small, LKCA-T, LKCA-B are Table 1's configs
    seg = plan("7", tmp_path, CONFIGS)
    assert {r.dataset for r in seg.runs} == {"ade20k"} and len(seg.runs) == 8


def test_run_length_counts_passes_steps_and_images():
    cfg = {"dataset": "cifar10", "epochs": 100, "batch_size": 128}
    assert run_length("cls", cfg) == (100 * 390, 100 * 390 * 128)  # floor(50000 / 128) = 390
    # three passes per epoch (SPT's epoch): floor(3 x 50000 / 128) = 1171 steps
    assert run_length("cls", dict(cfg, epoch_passes=3)) == (117100, 117100 * 128)
    assert run_length("cls", dict(cfg, max_steps_per_epoch=10)) == (1000, 128000)
    assert run_length("seg", {"iters": 2000, "batch_size": 16}) == (2000, 32000)


def test_the_digits_size_is_the_loaders():
    from lkca.data import load_dataset
    from lkca.reproduce.cost import TEST_IMAGES, TRAIN_IMAGES

    assert len(load_dataset("digits", None, "train").labels) == TRAIN_IMAGES["digits"]
    assert len(load_dataset("digits", None, "test").labels) == TEST_IMAGES["digits"]


def test_the_plan_printout_counts_runs_images_and_hours(tmp_path):
    rep = plan("1", tmp_path, CONFIGS, datasets=["cifar10"])
    text = plan_text(rep, images_per_s=1000.0)
    # the paper configs' epochs are three passes: floor(3 x 50000 / 128) = 1171 steps x 100 epochs
    assert "| ViT-LKCA | `" in text and "| 0/1 | 117,100 | 14,988,800 | 1,000.0 (--images-per-s) |" in text
    assert "12 runs: 0 finished, 0 to resume, 12 to start; 179.9M training images left, " \
           f"projected {12 * 14988800 / 1000 / 3600:,.1f} device-hours" in text


def test_a_run_of_another_config_in_the_way_is_a_conflict(tmp_path):
    spec = write_digits_table(tmp_path / "spec")
    table, configs = load_table_spec(spec)
    (run, _) = plan_runs(configs, 1, tmp_path / "runs")
    assert run_state(run).kind == "new"
    run.out.mkdir(parents=True)
    saved = dict(run.resolved, lr=0.5, out="elsewhere", device="cpu", progress=False)
    (run.out / "config.yaml").write_text(yaml.safe_dump(saved))
    state = run_state(run)
    assert state.kind == "conflict" and "lr: 0.5 there, 0.002 in the config" in state.detail
    assert config_difference(dict(run.resolved, out="x", stop_after_epochs=1), run.resolved) == ""


def test_tables_of_your_own_are_checked_with_one_clear_line(tmp_path):
    spec = write_digits_table(tmp_path)
    table, configs = load_table_spec(spec)
    assert table.number == 0 and table.datasets == ("digits",) and table.img_size == 8
    assert [(r.row, r.top1, r.model_args) for r in table.rows] == [
        ("1 block", (90.0,), {"depth": 1}), ("2 blocks", (None,), {"depth": 2})]
    assert [c.config for c in configs] == [tmp_path / "d1.yaml", tmp_path / "d2.yaml"]
    bad = tmp_path / "bad.yaml"
    for text, message in (
            ("rows: []\n", "needs `rows:`"),
            ("title: x\nrowz: []\n", "needs `rows:`"),
            ("rows: [{row: a, config: d1.yaml, seed: 3}]\n", "unknown key 'seed' in row 1"),
            ("rows: [{row: a, config: d1.yaml, paper: [1, 2]}]\n", "must be a number"),
            ("rows: [{row: a}]\n", "needs `row: LABEL` and `config: FILE`"),
            ("rows: [{row: a, config: nope.yaml}]\n", "does not exist"),
            ("rows: [{row: a, config: d1.yaml}, {row: b, config: c10.yaml}]\n", "one data set")):
        (tmp_path / "c10.yaml").write_text("dataset: cifar10\nmodel: vit_500k\n")
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message) as err:
            load_table_spec(bad)
        assert "\n" not in str(err.value)


def test_cli_refuses_bad_tables_and_options_with_one_line(tmp_path, capsys):
    from lkca.cli import main

    for argv, message in ((["--table", "9"], "the paper has Tables 1-7"),
                          (["--table", "1", "--datasets", "svhn"], "not a data set of Table 1"),
                          (["--table", "1", "--seeds", "0"], "--seeds must be positive"),
                          (["--table", "1", "--configs", str(tmp_path)], "holds no cls/ or seg/"),
                          (["--table", "1"], "need --data-dir DIR")):
        assert main(["reproduce", "--runs", str(tmp_path / "runs"), *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_dry_run_plans_and_writes_nothing(tmp_path, capsys):
    from lkca.cli import main

    assert main(["reproduce", "--table", "6", "--runs", str(tmp_path / "runs"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "## Plan: Table 6" in out and "2 runs: 0 finished" in out and "(stated, " in out
    # 2 x 20k iterations x 16 crops, each at its model's stated images/s (docs/reproduce.md)
    assert "projected 33.9 device-hours" in out
    assert main(["reproduce", "--table", "6", "--runs", str(tmp_path / "runs"), "--dry-run",
                 "--seg-reading", "per-row"]) == 0
    assert "8 runs: 0 finished" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_two_configs_for_one_row_are_refused(tmp_path):
    import shutil

    shutil.copytree(CONFIGS / "cls", tmp_path / "cls")
    shutil.copy(tmp_path / "cls/cifar10/vit_1m.yaml", tmp_path / "cls/cifar10/vit_1m_copy.yaml")
    with pytest.raises(UserError, match="all train the paper's row VIT/1M on cifar10; keep one"):
        paper_table_configs(TABLES[1], tmp_path)
