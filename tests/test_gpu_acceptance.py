"""benchmarks/gpu_acceptance.py in its CPU smoke mode (the GPU run itself is never a test): every
section runs and writes what the JSON promises; a section over its cap keeps its partial results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_acceptance.py"


def _run(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    out = tmp_path / "acceptance.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--out", str(out),
                           *args], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, **(env or {})))
    return json.loads(out.read_text()), proc


@pytest.mark.slow
def test_smoke_run_fills_every_section(tmp_path):
    # generous caps: on a loaded CI machine the smoke run may take longer than its usual minute
    caps = [f"--cap={s}=300" for s in ("learning", "mixer", "models", "seg")]
    data, proc = _run(tmp_path, *caps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert data["smoke"] and data["device"] == "cpu" and data["machine"]["torch"]
    sections = data["sections"]
    assert {s: sections[s]["status"] for s in sections} == dict.fromkeys(
        ("learning", "mixer", "models", "seg"), "ok")
    learning = sections["learning"]["auto"]
    assert learning["loss_fell"] and learning["above_chance"]
    assert data["checks"]["learning auto: loss fell, accuracy >= 2x chance"]
    rows = sections["mixer"]["rows"]
    assert [r["dtype"] for r in rows] == ["fp32", "bf16 autocast"]
    for row in rows:
        assert set(row["ms"]) >= {"lkca_conv", "lkca_toeplitz", "lkca_fft", "lkca_auto"}
        assert row["first_call"]["tuner"]["source"] == "timed" and row["first_call"]["overhead_ms"]
        assert row["rule_choice"] in ("conv", "toeplitz", "fft")
    for name in ("vit_2p7m", "vit_lkca_2p7m"):
        for mode in ("eager", "compile (eager backend)"):
            assert sections["models"][f"{name} {mode}"]["images_per_s"] > 0
        hours = data["projection"]["hours"][name]["eager"]
        ips = sections["models"][f"{name} eager"]["images_per_s"]
        assert hours == pytest.approx(100 * 3 * 50_000 / ips / 3600)
    assert "100 epochs x 3 passes x 50,000 images" in data["projection"]["formula"]
    assert any(" B* " in k for k in sections["models"]["lkca_impl_choices"])  # chosen while compiling
    assert {"upernet vit_s_seg", "upernet lkca_s_seg"} <= set(sections["seg"])


@pytest.mark.slow
def test_a_section_over_its_cap_keeps_its_partial_results_and_the_rest_runs(tmp_path):
    data, proc = _run(tmp_path, "--sections", "mixer,learning", "--cap", "mixer=15",
                      env={"GPU_ACCEPTANCE_STALL": "mixer"})  # mixer hangs after its first row
    assert proc.returncode == 0, proc.stderr[-3000:]
    mixer, learning = data["sections"]["mixer"], data["sections"]["learning"]
    assert mixer["status"] == "overran" and mixer["cap_s"] == 15 and len(mixer["rows"]) == 1
    assert learning["status"] == "ok" and learning["auto"]["loss_fell"]
    assert "overran" in proc.stdout


def test_bad_arguments_are_one_line_errors(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sections", "mixer,typo"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown section" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
