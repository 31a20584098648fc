import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]


def _check(script: str, monkeypatch) -> int:
    """``python benchmarks/<script> --check``, in this process (its counts are cached here for
    the other tests that render tables)."""
    spec = importlib.util.spec_from_file_location(script[:-3], ROOT / "benchmarks" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [script, "--check"])
    return module.main()


def test_readme_model_table_is_up_to_date(monkeypatch):
    assert _check("model_table.py", monkeypatch) == 0, (
        "README model table is stale: run python benchmarks/model_table.py")


def test_baseline_table_is_up_to_date(monkeypatch):
    """docs/baselines.md: every registered comparison model's params and MACs beside the paper's."""
    assert _check("baseline_table.py", monkeypatch) == 0, (
        "docs/baselines.md table is stale: run python benchmarks/baseline_table.py")


def test_readme_table_leaves_out_the_baselines(monkeypatch):
    from lkca.analysis import tables
    from lkca.models.registry import is_baseline, list_models, paper_figures

    zero = {"params": 0, "macs": 0, "token_mixing_macs": 0, "ptflops_macs": 0}
    monkeypatch.setattr(tables, "Profiler", lambda: SimpleNamespace(classifier=lambda *a: zero))
    ours = {r["name"] for r in tables.model_rows()}
    baselines = {r["name"] for r in tables.baseline_rows()}
    assert ours and baselines and ours.isdisjoint(baselines)
    assert not any(is_baseline(n) for n in ours) and all(map(is_baseline, baselines))
    assert ours | baselines == {n for n in list_models() if paper_figures(n)}
    assert set(list_models()) - ours - baselines == {"lkca_digits"}  # no paper row
