"""The autotuner's race on a simulated clock: the winner, the drops and the cost bound, exactly
(no real timing, so nothing here depends on the machine's load)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkca.layers.lkca_timing import GROWTH, REPEATS, SUB_PROBLEMS, race, sub_problems

CANDIDATES = ["conv", "toeplitz", "fft"]


class Clock:
    """``run(impl, (b, h, dd))`` costing ``per_unit[impl] * b * h * dd`` seconds (plus ``once``
    on the first call of each impl and size); records every call."""

    def __init__(self, per_unit: dict[str, float], once: float = 0.0, fail: str = "") -> None:
        self.per_unit, self.once, self.fail = per_unit, once, fail
        self.calls: list[tuple[str, tuple[int, int, int], float]] = []

    def __call__(self, impl: str, size: tuple[int, int, int]) -> float:
        if impl == self.fail:
            raise RuntimeError("CUDA out of memory. Tried to allocate 80.00 GiB\nmore text")
        b, h, d = size
        first = all((i, s) != (impl, size) for i, s, _ in self.calls)
        t = self.per_unit[impl] * b * h * d + (self.once if first else 0.0)
        self.calls.append((impl, size, t))
        return t

    def spent(self, impl: str | None = None) -> float:
        return sum(t for i, _, t in self.calls if impl in (None, i))


def test_sub_problems_grow_at_most_4x_and_end_with_the_problem():
    assert sub_problems(128, 12, 16) == [(1, 6, 16), (2, 12, 16), (8, 12, 16), (32, 12, 16),
                                         (128, 12, 16)]  # exact quarters
    assert sub_problems(1, 1, 1) == [(1, 1, 1)]
    assert sub_problems(1, 2, 8) == [(1, 1, 1), (1, 1, 4), (1, 2, 8)]  # down to one unit
    for full in [(96, 1, 16), (2, 6, 64), (7, 5, 3), (1000, 16, 64)]:
        sizes = sub_problems(*full)
        units = [b * h * d for b, h, d in sizes]
        assert sizes[-1] == full and len(sizes) <= 1 + SUB_PROBLEMS
        assert all(1 < big / small <= GROWTH for small, big in zip(units, units[1:])), sizes
        assert all(all(s <= f for s, f in zip(size, full)) for size in sizes)


def test_the_fastest_wins_and_a_hopeless_candidate_never_runs_in_full():
    clock = Clock({"conv": 100.0, "toeplitz": 1.0, "fft": 1.5})
    ms, skipped = race(clock, (64, 12, 16), CANDIDATES)
    assert min(ms, key=ms.get) == "toeplitz" and set(ms) == {"toeplitz", "fft"}
    assert skipped["conv"].startswith("dropped: ") and "more than toeplitz in full" in skipped["conv"]
    assert all(size != (64, 12, 16) for i, size, _ in clock.calls if i == "conv")
    best = 64 * 12 * 16 * 1.0
    assert ms["toeplitz"] == pytest.approx(best * 1e3)
    assert clock.spent("conv") <= (2 * GROWTH + 4 / 3) * best


def test_one_time_costs_do_not_drop_the_fastest():
    """A first call at each size costing 50x the whole problem (plan creation, algorithm search)
    still leaves the fastest the winner: a sub-problem over the best is timed a second time."""
    full = (32, 6, 64)
    clock = Clock({"conv": 1.0, "toeplitz": 3.0, "fft": 2.0}, once=50.0 * 32 * 6 * 64)
    ms, skipped = race(clock, full, CANDIDATES)
    assert min(ms, key=ms.get) == "conv", (ms, skipped)


def test_a_failing_candidate_is_skipped_with_its_first_error_line():
    clock = Clock({"conv": 2.0, "toeplitz": 1.0, "fft": 3.0}, fail="toeplitz")
    ms, skipped = race(clock, (8, 4, 8), CANDIDATES)
    assert min(ms, key=ms.get) == "conv"
    assert skipped == {"toeplitz": "failed: RuntimeError: CUDA out of memory. Tried to allocate 80.00 GiB"}


def test_full_timing_is_warm_up_then_repeats_median():
    clock = Clock({"conv": 1.0, "toeplitz": 1.0, "fft": 1.0})
    ms, skipped = race(clock, (1, 1, 1), CANDIDATES)
    assert not skipped and ms == {c: pytest.approx(1e3) for c in CANDIDATES}
    assert [i for i, _, _ in clock.calls] == [c for c in CANDIDATES for _ in range(1 + REPEATS)]


@settings(max_examples=200, deadline=None)
@given(
    costs=st.lists(st.floats(1.0, 200.0), min_size=3, max_size=3),
    batch=st.integers(16, 256), heads=st.integers(1, 16), d=st.sampled_from([16, 32, 64]),
)
def test_first_call_costs_at_most_25_times_the_best(costs, batch, heads, d):
    """Costs linear in the work, each candidate at most 200x slower than the best."""
    per_unit = dict(zip(CANDIDATES, costs))
    clock = Clock(per_unit)
    ms, skipped = race(clock, (batch, heads, d), CANDIDATES)
    fastest = min(per_unit, key=per_unit.get)
    assert per_unit[min(ms, key=ms.get)] == per_unit[fastest]  # ties: any of the fastest
    best = per_unit[fastest] * batch * heads * d
    assert clock.spent() <= 25 * best
    for impl in skipped:
        assert clock.spent(impl) <= (2 * GROWTH + 4 / 3) * best * 1.0001
