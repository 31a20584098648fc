"""The CPU cost model against the timings it was fit on (benchmarks/results/lkca_cost_fit_cpu.json)."""

import json
from pathlib import Path

import pytest

from lkca.layers.lkca import global_kernel_size
from lkca.layers.lkca_cost import choose_impl

FIT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "lkca_cost_fit_cpu.json"
ROWS = json.loads(FIT.read_text())["rows"]


@pytest.mark.parametrize("training", [True, False])
def test_choice_is_near_the_measured_fastest_on_every_timed_shape(training):
    mode = "train" if training else "infer"
    for r in ROWS:
        measured = {impl: r[f"{impl}/{mode}"] for impl in ("conv", "toeplitz", "fft")
                    if f"{impl}/{mode}" in r}
        grid, kernel = tuple(r["grid"]), tuple(r["kernel"])
        choice = choose_impl(r["batch"], r["dim"], r["heads"], grid, kernel, training=training)
        best = min(measured, key=measured.get)
        slowdown = measured.get(choice, float("inf")) / measured[best]
        assert slowdown <= 1.6, (r["batch"], r["dim"], grid, kernel, mode, choice, measured)
        if training and kernel == global_kernel_size(grid):  # the default LKCA: exactly the best
            assert choice == best, (r["batch"], r["dim"], grid, kernel, choice, measured)
