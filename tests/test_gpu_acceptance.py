"""benchmarks/gpu_acceptance.py in its CPU smoke mode (the GPU run itself is never a test): every
section runs and writes what the JSON promises; a section over its cap keeps its partial results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_acceptance.py"
sys.path.insert(0, str(SCRIPT.parent))
import gpu_acceptance as acceptance  # noqa: E402


def _run(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    out = tmp_path / "acceptance.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--out", str(out),
                           *args], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, **(env or {})))
    return json.loads(out.read_text()), proc


@pytest.mark.slow
def test_smoke_run_fills_every_section(tmp_path):
    # generous caps: on a loaded CI machine the smoke run may take longer than its usual minute
    caps = [f"--cap={s}=300" for s in ("learning", "mixer", "models", "seg", "engine")]
    data, proc = _run(tmp_path, *caps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert data["smoke"] and data["device"] == "cpu" and data["machine"]["torch"]
    sections = data["sections"]
    assert {s: sections[s]["status"] for s in sections} == dict.fromkeys(
        ("learning", "mixer", "models", "seg", "engine"), "ok")
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
    mixer = sections["mixer"]["budget"]
    assert mixer["floor_s"] == pytest.approx(acceptance.mixer_floor_s(
        [((4, 4), 16, 2, 4, None, 2, True)], mixer["samples"], mixer["min_sample_s"]))
    engine = sections["engine"]
    for precision in ("fp32", "tf32", "bf16"):  # lkca train itself, eager and compiled
        for mode in ("eager", "compile"):
            case = engine[f"vit_lkca_2p7m {precision} {mode}"]
            assert case["images_per_s"] > 0 and case["steps_per_epoch"] == 2
            assert case["paper_run_hours"] == pytest.approx(100 * 1171 * 128 / case["images_per_s"]
                                                            / 3600)
    plan = engine["plan"]
    assert plan["timed_s"] == pytest.approx(plan["cases"] * 2 * 2 * plan["first_step_s"])


@pytest.mark.slow
def test_a_section_over_its_cap_keeps_its_partial_results_and_the_rest_runs(tmp_path):
    data, proc = _run(tmp_path, "--sections", "mixer,learning", "--cap", "mixer=15",
                      env={"GPU_ACCEPTANCE_STALL": "mixer"})  # mixer hangs after its first row
    assert proc.returncode == 0, proc.stderr[-3000:]
    mixer, learning = data["sections"]["mixer"], data["sections"]["learning"]
    assert mixer["status"] == "overran" and mixer["cap_s"] == 15 and len(mixer["rows"]) == 1
    assert learning["status"] == "ok" and learning["auto"]["loss_fell"]
    assert "overran" in proc.stdout


def test_each_section_fits_its_cap_by_its_own_arithmetic():
    """The mixer's samples alone take mixer_floor_s (the docstring's 41 s; 137 s with the
    5 samples x 0.1 s it had, over its 130 s cap), under half its cap; the engine's plan keeps
    its timed epochs within its share of the cap whenever its steps are not at their floor."""
    from lkca_mixer import ROWS

    floor = acceptance.mixer_floor_s(ROWS, acceptance.MIXER_SAMPLES, acceptance.MIXER_MIN_SAMPLE_S)
    assert round(floor) == 41 and "= 41 s" in acceptance.__doc__
    assert floor <= 0.5 * acceptance.CAPS_S["mixer"]
    assert acceptance.mixer_floor_s(ROWS, 5, 0.1) > acceptance.CAPS_S["mixer"]
    cap = acceptance.CAPS_S["engine"]
    for step_s in (0.005, 0.02, 0.04):  # plausible GPU step times of the first case
        plan = acceptance.engine_plan(step_s, 11, cap)
        assert plan["timed_s"] <= acceptance.ENGINE_TIMED_SHARE * cap
        assert plan["timed_s"] == pytest.approx(11 * 2 * plan["steps_per_epoch"] * step_s)
    assert acceptance.engine_plan(1.0, 11, cap)["steps_per_epoch"] == 5  # the floor: over budget
    first = acceptance.ENGINE_FIRST_STEPS * 2  # the first case's own timed steps, at 0.04 s
    assert first * 0.04 + acceptance.engine_plan(0.04, 11, cap)["timed_s"] <= 0.75 * cap
    assert sum(acceptance.CAPS_S.values()) <= acceptance.TOTAL_CAP_S


def test_bad_arguments_are_one_line_errors(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sections", "mixer,typo"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown section" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
