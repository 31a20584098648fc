"""`lkca tables`: the paper's Tables 1-7 with our counts and, where a finished run exists, ours."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from lkca.analysis import paper_report
from lkca.analysis.paper_report import Profiler, cls_table_markdown, render_tables
from lkca.analysis.paper_tables import (
    CLS_TABLES,
    MODEL_NAMES,
    SEG_TABLES,
    TABLE_1,
    TABLES,
    ClsTable,
)
from lkca.analysis.run_index import RunRecordWarning, find_runs
from lkca.cli import main

FAKE = {"params": 1_000_000, "macs": 60_000_000, "token_mixing_macs": 10_000_000}


@pytest.fixture
def fast_profile(monkeypatch):
    """Counting 40 models and 8 segmentors takes ~30 s on a small CPU; these tests need rows.
    The fake counts go into a cache of their own (the process-wide one keeps real counts)."""
    monkeypatch.setattr(paper_report, "profile_classifier", lambda *a: dict(FAKE))
    monkeypatch.setattr(paper_report, "profile_segmentor", lambda *a: dict(FAKE))
    monkeypatch.setattr(Profiler, "_cache", {})


def _run(root: Path, name: str, config: dict, summary: dict | None = None,
         epochs_done: int | None = None) -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    if summary is not None:
        (d / "summary.json").write_text(json.dumps(summary))
    if epochs_done is not None:
        lines = [json.dumps({"epoch": e, "test_top1": 50.0}) for e in range(1, epochs_done + 1)]
        (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def _cls(model, dataset, epochs=100, **extra):
    return {"model": model, "dataset": dataset, "epochs": epochs, "model_args": {}, **extra}


NECK = {"neck_resample": "bilinear"}  # what SegConfig writes for a ViT backbone


def _seg(backbone, head, iters, model_args=NECK):
    return {"backbone": backbone, "head": head, "iters": iters, "model_args": model_args}


def _evaluations(root: Path, name: str, *records: tuple[int, float, float, float]) -> None:
    """metrics.jsonl of a segmentation run: (iter, aAcc, top10_mIoU, mIoU) per evaluation."""
    (root / name / "metrics.jsonl").write_text("".join(
        json.dumps({"iter": it, "aAcc": a, "top10_mIoU": t, "mIoU": m}) + "\n"
        for it, a, t, m in records))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    # finished: ViT-LKCA (Table 1, Table 4 LKCA-B) on CIFAR-10, and LKCA-T (alias) on SVHN
    _run(root, "cifar10-lkca-b", _cls("vit_lkca_2p7m", "cifar10"),
         {"top1": 93.0, "best_top1": 93.5, "epochs": 100}, epochs_done=100)
    _run(root, "nested/svhn-lkca-t", _cls("lkca_t", "svhn"),
         {"top1": 97.65, "best_top1": 97.65, "epochs": 100})
    # still running (no summary), and stopped early (summary but 30 of 100 epochs)
    _run(root, "cifar100-vit", _cls("vit_2p7m", "cifar100"), epochs_done=40)
    _run(root, "cifar10-vit500k", _cls("vit_500k", "cifar10"),
         {"top1": 80.0, "best_top1": 80.0, "epochs": 100},
         epochs_done=30)
    # another architecture (depth changed): no paper row
    _run(root, "cifar10-vit1m-depth3", _cls("vit_1m", "cifar10", model_args={"depth": 3}),
         {"top1": 70.0, "best_top1": 70.0, "epochs": 100}, epochs_done=100)
    # not a run
    (root / "notes").mkdir()
    (root / "notes" / "config.yaml").write_text("hello: 1\n")
    # segmentation, the one-run reading: LKCA-S FPN's 20k run finished (evaluated after 10k and
    # 20k), LKCA-B UperNet's 20k run at 4k (evaluated after 2k and 4k); the top-10 mIoU (the
    # paper's column) far above the 150-class mIoU, as from scratch
    _run(root, "seg-fpn-lkca-s", _seg("lkca_s_seg", "fpn", 20000),
         {"iters": 20000, "aAcc": 66.0, "top10_mIoU": 40.5, "mIoU": 9.75})
    _evaluations(root, "seg-fpn-lkca-s", (10000, 60.0, 35.0, 7.0), (20000, 66.0, 40.5, 9.75))
    b_args = {"dim": 768, "num_heads": 12, "drop_path_rate": 0.0, **NECK}
    _run(root, "seg-upernet-lkca-b-20k", _seg("lkca_s_seg", "upernet", 20000, b_args))
    _evaluations(root, "seg-upernet-lkca-b-20k", (2000, 44.0, 23.0, 4.0), (4000, 50.0, 29.0, 5.0))
    # the per-row reading: LKCA-B UperNet 2k finished, ViT-S UperNet 10k stopped at 4k
    _run(root, "seg-upernet-lkca-b-2k", _seg("lkca_s_seg", "upernet", 2000, b_args),
         {"iters": 2000, "aAcc": 46.0, "top10_mIoU": 25.0, "mIoU": 4.5})
    _run(root, "seg-upernet-vit-s-10k", _seg("vit_s_seg", "upernet", 10000),
         {"iters": 4000, "aAcc": 40.0, "top10_mIoU": 20.0, "mIoU": 3.0})
    # a ViT-S UperNet 20k run of the deconvolution neck (an older run names no neck): another
    # architecture, no row
    _run(root, "seg-upernet-vit-s-deconv", _seg("vit_s_seg", "upernet", 20000, {}),
         {"iters": 20000, "aAcc": 50.0, "top10_mIoU": 30.0, "mIoU": 6.0})
    return root


def _section(md: str, number: int) -> list[str]:
    start = md.index(f"## Table {number}:")
    end = md.find("\n## Table", start + 1)
    return md[start:end if end > 0 else None].splitlines()


def _row(md: str, table: int, *first: str) -> list[str]:
    """The cells of the row of ``table`` whose first cells are ``first``."""
    for line in _section(md, table):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if tuple(cells[: len(first)]) == first:
            return cells
    raise AssertionError(f"no row {first} in Table {table}")


def test_transcription_matches_the_papers_headline_numbers():
    assert sorted(TABLES) == [1, 2, 3, 4, 5, 6, 7]
    assert [len(t.rows) for t in CLS_TABLES] == [12, 12, 12, 10, 27]
    assert [len(t.rows) for t in SEG_TABLES] == [8, 16]
    lkca = {(t.number, r.row): r.top1 for t in CLS_TABLES for r in t.rows}
    assert lkca[(1, "ViT-LKCA")] == (94.11,) and lkca[(2, "ViT-LKCA")] == (76.50,)
    assert lkca[(3, "ViT-LKCA")] == (60.95,) and lkca[(4, "LKCA-B")] == (94.11, 76.50, 97.68)
    assert lkca[(5, "LKCA-L")] == (63.43,)
    seg = {(r.backbone, r.head, r.iters): (r.aAcc, r.mIoU) for r in TABLES[7].rows}
    assert seg[("LKCA-S", "upernet", 20000)] == (64.37, 40.09)
    assert seg[("LKCA-S", "fpn", 20000)] == (67.21, 41.81)
    assert all(row.row in MODEL_NAMES for t in CLS_TABLES for row in t.rows)


def test_finished_runs_fill_their_rows_and_the_others_are_marked(runs, fast_profile):
    md = render_tables(runs)
    # Table 1: the finished ViT-LKCA run, paper 94.11
    # the paper's column against the best epoch (93.50), the final epoch's (93.00) beside it
    assert _row(md, 1, "ViT-LKCA")[6:10] == ["94.11", "93.50", "-0.61", "93.00"]
    assert _row(md, 1, "ViT")[6:8] == ["93.36", "no run"]
    assert _row(md, 1, "VIT/0.5M")[7] == "running (30/100 epochs)"  # summary, but stopped early
    assert _row(md, 1, "VIT/1M")[7] == "no run"  # its only run has another depth
    # Table 2: a run without summary is running
    assert _row(md, 2, "ViT")[7] == "running (40/100 epochs)"
    # Table 4: the same CIFAR-10 run fills LKCA-B, the alias lkca_t run fills LKCA-T on SVHN
    lkca_b = _row(md, 4, "LKCA-B")
    assert lkca_b[6:10] == ["94.11", "93.50", "-0.61", "93.00"] and lkca_b[11] == "no run"
    lkca_t = _row(md, 4, "LKCA-T")
    assert lkca_t[7] == "no run" and lkca_t[14:18] == ["97.15", "97.65", "+0.50", "97.65"]
    assert "`" + str(runs / "cifar10-lkca-b") + "`" in md  # listed under "Runs used"
    # counts come from the profiler, beside the paper's
    assert _row(md, 1, "ViT-LKCA")[2:6] == ["2.69M", "1.00M (-62.8%)", "170.81M",
                                             "50.00M (-70.7%) [60.00M]"]


def test_one_run_fills_the_rows_it_has_evaluated(runs, fast_profile):
    """The default reading: each row is the evaluation after its iterations of the 20k run of its
    backbone and head, read while that run still trains."""
    md = render_tables(runs, [6, 7])
    assert "## Table 1:" not in md and "one 20,000-iteration run per backbone and head" in md
    fpn = _row(md, 7, "LKCA-S", "fpn", "20000")
    # the paper's mIoU ("in 10 high-score categories") is compared with the top-10 mIoU; the
    # 150-class mIoU follows, not compared
    assert fpn[8:15] == ["67.21", "66.00", "-1.21", "41.81", "40.50", "-1.31", "9.75"]
    assert "top-10 mIoU (ours)" in md and "150-class mIoU (ours)" in md
    fpn10 = _row(md, 7, "LKCA-S", "fpn", "10000")  # the same run's evaluation after 10k
    assert fpn10[8:15] == ["62.55", "60.00", "-2.55", "39.03", "35.00", "-4.03", "7.00"]
    assert _row(md, 7, "Vit-S", "upernet", "10000")[9] == "no run"  # a 10k run is the per-row one
    assert _row(md, 7, "Vit-S", "upernet", "20000")[9] == "no run"  # the deconv run is not the row
    resnet = _row(md, 7, "ResNet-50", "upernet", "10000")  # Table 7's comparison backbones
    assert resnet[3] == "`resnet50_seg`" and resnet[9] == "no run"
    assert _row(md, 7, "Twins_PCPVT-S", "fpn", "20000")[3] == "`twins_pcpvt_s_seg`"
    assert _row(md, 6, "LKCA-B", "upernet", "2000")[8:11] == ["45.48", "44.00", "-1.48"]
    assert _row(md, 6, "LKCA-B", "upernet", "4000")[8:11] == ["52.67", "50.00", "-2.67"]
    assert _row(md, 6, "LKCA-B", "upernet", "8000")[9] == "running (4000/20000 iters)"
    assert _row(md, 6, "ViT-B", "upernet", "2000")[9] == "no run"  # S-width runs are not B
    assert md.count(f"`{runs / 'seg-upernet-lkca-b-20k'}`") == 2  # one run, two rows used


def test_the_per_row_reading_still_reads_a_run_per_row(runs, fast_profile):
    md = render_tables(runs, [6, 7], reading="per-row")
    assert "final evaluation of a run of its own" in md
    lkca_b = _row(md, 6, "LKCA-B", "upernet", "2000")
    assert lkca_b[8:15] == ["45.48", "46.00", "+0.52", "24.65", "25.00", "+0.35", "4.50"]
    assert _row(md, 6, "LKCA-B", "upernet", "4000")[9] == "no run"  # the 20k run is not read
    assert _row(md, 7, "Vit-S", "upernet", "10000")[9] == "running (4000/10000 iters)"
    assert _row(md, 7, "LKCA-S", "fpn", "10000")[9] == "no run"
    assert _row(md, 7, "LKCA-S", "fpn", "20000")[9] == "66.00"  # a 20k run is both readings' row


def test_a_run_that_skipped_a_rows_evaluation_says_so(tmp_path, fast_profile):
    _run(tmp_path, "r", _seg("lkca_s_seg", "fpn", 20000),
         {"iters": 20000, "aAcc": 66.0, "top10_mIoU": 40.5, "mIoU": 9.75})
    _evaluations(tmp_path, "r", (12000, 60.0, 35.0, 7.0), (20000, 66.0, 40.5, 9.75))
    md = render_tables(tmp_path, [7])
    assert _row(md, 7, "LKCA-S", "fpn", "10000")[9] == "no evaluation at iter 10000"
    assert _row(md, 7, "LKCA-S", "fpn", "20000")[9] == "66.00"


def test_rows_of_unregistered_models_are_marked_and_picked_up_by_name(runs, fast_profile,
                                                                     monkeypatch):
    monkeypatch.setitem(MODEL_NAMES, "T2T-T", "t2t_t_not_a_model")
    assert "`t2t_t_not_a_model` not registered" in _row(render_tables(runs, [5]), 5, "T2T-T")[1]
    monkeypatch.setitem(MODEL_NAMES, "T2T-T", "vit_1m")  # once the name exists it is used
    row = _row(render_tables(runs, [5]), 5, "T2T-T")
    assert row[1] == "`vit_1m`" and row[7] == "no run"


def test_real_counts_of_a_small_model_appear():
    from lkca import create_model, profile

    table = ClsTable(1, TABLE_1.title, ("cifar10",), 32, 10,
                     tuple(r for r in TABLE_1.rows if r.row == "VIT/0.5M"))
    md = cls_table_markdown(table, [], Profiler())
    stats = profile(create_model("vit_500k"), 32)
    cells = _row(md, 1, "VIT/0.5M")
    assert cells[3].startswith(f"{stats['params'] / 1e6:.2f}M (")
    core = stats["macs"] - stats["token_mixing_macs"]
    assert cells[5] == (f"{core / 1e6:.2f}M ({100 * (core / 30.58e6 - 1):+.1f}%) "
                        f"[{stats['macs'] / 1e6:.2f}M]")


def test_profiler_measures_each_model_once(monkeypatch):
    calls = []
    monkeypatch.setattr(paper_report, "profile_classifier",
                        lambda *a: calls.append(a) or dict(FAKE))
    monkeypatch.setattr(Profiler, "_cache", {})
    profiler = Profiler()
    for _ in range(3):
        profiler.classifier("vit_500k", 32, 10)
    profiler.classifier("vit_500k", 32, 100)
    Profiler().classifier("vit_500k", 32, 10)["params"] = -1  # a new profiler, a copy
    assert calls == [("vit_500k", 32, 10), ("vit_500k", 32, 100)]
    assert Profiler().classifier("vit_500k", 32, 10) == FAKE


def test_run_index_reads_a_half_written_metrics_file(tmp_path):
    _run(tmp_path, "r", _cls("vit_500k", "cifar10", epochs=5), epochs_done=3)
    with (tmp_path / "r" / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 4, "test_')
    (run,) = find_runs(tmp_path)
    assert (run.task, run.done, run.total, run.finished) == ("cls", 3, 5, False)


def test_cli_writes_markdown_and_rejects_a_missing_runs_folder(runs, fast_profile, tmp_path,
                                                               capsys):
    out = tmp_path / "tables.md"
    assert main(["tables", "--runs", str(runs), "--table", "7", "--out", str(out)]) == 0
    assert out.read_text().count("## Table") == 1 and "66.00" in out.read_text()
    assert main(["tables", "--runs", str(runs), "--table", "6", "--out", str(out)]) == 0
    assert "| 44.00 |" in out.read_text() and "| 46.00 |" not in out.read_text()
    assert main(["tables", "--runs", str(runs), "--table", "6", "--seg-reading", "per-row",
                 "--out", str(out)]) == 0
    assert "| 46.00 |" in out.read_text() and "| 44.00 |" not in out.read_text()
    assert main(["tables", "--runs", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0]


def test_the_newest_finished_run_is_reported(tmp_path, fast_profile):
    import os

    _run(tmp_path, "old", _cls("vit_2p7m", "cifar10"),
         {"top1": 90.0, "best_top1": 90.0, "epochs": 100})
    _run(tmp_path, "new", _cls("vit_2p7m", "cifar10"),
         {"top1": 91.0, "best_top1": 91.0, "epochs": 100})
    _run(tmp_path, "newest-unfinished", _cls("vit_2p7m", "cifar10"), epochs_done=5)
    for age, name in ((300, "old"), (200, "new"), (100, "newest-unfinished")):
        for f in (tmp_path / name).iterdir():
            os.utime(f, (1e9 - age, 1e9 - age))
    assert _row(render_tables(tmp_path, [1]), 1, "ViT")[7] == "91.00"


def test_seeds_are_aggregated_newest_run_per_seed(tmp_path, fast_profile):
    import csv
    import io
    import os

    from lkca.analysis.paper_report import tables_csv

    for name, seed, top1, age in (("s0-old", 0, 50.0, 300), ("s0", 0, 93.0, 200),
                                  ("s1", 1, 94.0, 200)):
        _run(tmp_path, name, _cls("vit_lkca_2p7m", "cifar10", seed=seed),
             {"top1": top1, "best_top1": top1, "epochs": 100}, epochs_done=100)
        for f in (tmp_path / name).iterdir():
            os.utime(f, (1e9 - age, 1e9 - age))
    _run(tmp_path, "s2", _cls("vit_lkca_2p7m", "cifar10", seed=2), epochs_done=10)
    cells = _row(render_tables(tmp_path, [1]), 1, "ViT-LKCA")
    assert cells[7:9] == ["93.50 ± 0.71 (n=2), 1 running", "-0.61"]
    rows = {r["row"]: r for r in csv.DictReader(io.StringIO(tables_csv([TABLE_1], tmp_path)))
            if r["metric"] == "best_top1"}
    lkca = rows["ViT-LKCA"]
    assert (lkca["paper"], lkca["mean"], lkca["std"], lkca["n"], lkca["diff"], lkca["status"]) == (
        "94.11", "93.5", "0.7071", "2", "-0.61", "partial")
    assert lkca["runs"] == f"{tmp_path / 's0'};{tmp_path / 's1'}"
    assert rows["ViT"]["status"] == "no run" and rows["ViT"]["n"] == "0"
    assert list(rows["ViT"]) == ["table", "row", "model", "dataset", "metric", "paper", "mean", "std",
                                 "n", "diff", "status", "runs"]


def test_best_and_final_epochs_differ(tmp_path, fast_profile, capsys):
    # two seeds whose best epoch (60, 80) is not their last: `lkca tables` shows both top-1s,
    # compares the best with the paper's column, and names each run's best epoch
    import csv
    import io

    from lkca.analysis.paper_report import tables_csv

    for seed, best, final, at in ((0, 93.8, 93.1, 60), (1, 94.2, 93.9, 80)):
        _run(tmp_path, f"s{seed}", _cls("vit_lkca_2p7m", "cifar10", seed=seed),
             {"top1": final, "best_top1": best, "best_epoch": at, "epochs": 100}, epochs_done=100)
    out = tmp_path / "tables.md"
    assert main(["tables", "--runs", str(tmp_path), "--table", "1", "--out", str(out)]) == 0
    md = out.read_text()
    head = _row(md, 1, "paper row")
    assert head[6:10] == ["CIFAR-10 (paper)", "CIFAR-10 best (ours)", "diff",
                          "CIFAR-10 final (ours)"]
    assert _row(md, 1, "ViT-LKCA")[6:10] == ["94.11", "94.00 ± 0.28 (n=2)", "-0.11",
                                             "93.50 ± 0.57 (n=2)"]
    assert "final 93.10, best 93.80 at epoch 60)" in md and "best 94.20 at epoch 80)" in md
    # one statement of what is compared: the best epoch's, under the table; the page's heading
    # does not claim another (it once said "ours is the final evaluation of a finished run")
    flat = " ".join(md.split())
    assert "Ours: the best epoch's test top-1, compared with the paper's" in flat
    assert "final evaluation" not in flat.split("## Table 1")[0]
    rows = [r for r in csv.DictReader(io.StringIO(tables_csv([TABLE_1], tmp_path)))
            if r["row"] == "ViT-LKCA"]
    assert [(r["metric"], r["paper"], r["mean"], r["diff"]) for r in rows] == [
        ("best_top1", "94.11", "94", "-0.11"), ("top1", "", "93.5", "")]


@pytest.mark.parametrize("damage, named", [
    (lambda d: _run(d, "bad", {**_cls("vit_500k", "cifar10"), "epochs": [2]}), "config epochs is [2]"),
    (lambda d: _run(d, "bad", {**_cls("vit_500k", "cifar10"), "epochs": None}), "config epochs is None"),
    (lambda d: _run(d, "bad", {**_cls("vit_500k", "cifar10"), "epochs": "ten"}), "config epochs is ten"),
    (lambda d: _run(d, "bad", {**_seg("vit_b_seg", "upernet", 2000), "iters": [4]}), "config iters is [4]"),
    (lambda d: (_run(d, "bad", _cls("vit_500k", "cifar10")),
                (d / "bad" / "metrics.jsonl").write_text('{"epoch": Infinity}\n')),
     "metrics.jsonl epoch is inf"),
    (lambda d: (_run(d, "bad", _cls("vit_500k", "cifar10"), {"epochs": "x"}),),
     "summary epochs is x"),
])
def test_one_damaged_run_folder_costs_its_own_row_not_the_table(tmp_path, fast_profile, capsys,
                                                                damage, named):
    _run(tmp_path, "good", _cls("vit_500k", "cifar10", epochs=5), epochs_done=5)
    damage(tmp_path)
    with pytest.warns(RunRecordWarning, match=f"bad: left out of the tables .*{re.escape(named)}"):
        (run,) = find_runs(tmp_path)
    assert run.path.name == "good"
    out = tmp_path / "tables.md"
    with pytest.warns(RunRecordWarning):
        assert main(["tables", "--runs", str(tmp_path), "--table", "7", "--out", str(out)]) == 0


def test_folders_nested_past_the_depth_are_not_searched(tmp_path):
    deep = tmp_path
    for _ in range(100):  # rglob recursed once per level (1,100 levels: a RecursionError)
        deep = deep / "d"
    deep.mkdir(parents=True)
    _run(tmp_path, "good", _cls("vit_500k", "cifar10", epochs=5), epochs_done=5)
    with pytest.warns(RunRecordWarning, match="not searched for runs .deeper than 32 folders"):
        (run,) = find_runs(tmp_path)
    assert run.path.name == "good"
