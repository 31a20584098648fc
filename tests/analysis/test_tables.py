import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_model_table_is_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "model_table.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "README model table is stale: run python benchmarks/model_table.py"


def test_baseline_table_is_up_to_date():
    """docs/baselines.md: every registered comparison model's params and MACs beside the paper's."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "baseline_table.py"),
                           "--check"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (
        "docs/baselines.md table is stale: run python benchmarks/baseline_table.py")


def test_readme_table_leaves_out_the_baselines(monkeypatch):
    from lkca.analysis import tables
    from lkca.models.registry import is_baseline, list_models, paper_figures

    zero = {"params": 0, "macs": 0, "token_mixing_macs": 0}
    monkeypatch.setattr(tables, "profile", lambda model, img_size: zero)
    monkeypatch.setattr(tables, "create_model", lambda name: None)
    ours = {r["name"] for r in tables.model_rows()}
    baselines = {r["name"] for r in tables.baseline_rows()}
    assert ours and baselines and ours.isdisjoint(baselines)
    assert not any(is_baseline(n) for n in ours) and all(map(is_baseline, baselines))
    assert ours | baselines == {n for n in list_models() if paper_figures(n)}
    assert set(list_models()) - ours - baselines == {"vit_lkcaonly_digits"}  # no paper row
