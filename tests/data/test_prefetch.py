"""Prefetch: the synchronous loop's items in its order, made ahead on one bounded worker thread
that never outlives the iteration, with a failure raised at its item's turn."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext

import pytest

from lkca.data.prefetch import Prefetch
from lkca.errors import DataFormatError


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_same_items_in_the_same_order_as_the_synchronous_loop(depth):
    with Prefetch(lambda k: k * k, range(10), depth, "pf-order") as items:
        got = list(items)
    assert got == [(k, k * k) for k in range(10)]
    assert not _threads("pf-order")


def test_depth_0_makes_each_item_on_the_callers_thread_when_it_is_asked_for():
    made: list[tuple[int, str]] = []

    def make(k: int) -> int:
        made.append((k, threading.current_thread().name))
        return k

    with Prefetch(make, range(3), 0) as items:
        it = iter(items)
        assert next(it) == (0, 0) and len(made) == 1  # nothing made ahead
        assert list(it) == [(1, 1), (2, 2)]
    assert {name for _, name in made} == {threading.current_thread().name}


def test_the_worker_runs_at_most_depth_plus_one_items_ahead():
    made: list[int] = []

    def make(k: int) -> int:
        made.append(k)
        return k

    with Prefetch(make, range(100), 2, "pf-bound") as items:
        it = iter(items)
        assert next(it) == (0, 0)
        deadline = time.monotonic() + 5
        while len(made) < 4 and time.monotonic() < deadline:  # 1, 2 waiting, 3 being handed over
            time.sleep(0.01)
        time.sleep(0.2)  # time enough to run on, were it not bounded
        assert made == [0, 1, 2, 3]
    assert not _threads("pf-bound")


def test_an_error_is_raised_at_its_items_turn_after_the_items_before_it():
    def make(k: int) -> int:
        if k == 3:
            raise DataFormatError(f"item {k} cannot be decoded")
        return k

    got = []
    with pytest.raises(DataFormatError, match="item 3 cannot be decoded"):
        with Prefetch(make, range(10), 4, "pf-error") as items:
            for _, v in items:
                got.append(v)
    assert got == [0, 1, 2]
    assert not _threads("pf-error")


@pytest.mark.parametrize("how", ["break", "error"])
def test_leaving_early_stops_and_joins_the_worker(how):
    started = threading.Event()

    def make(k: int) -> int:
        started.set()
        time.sleep(0.01)
        return k

    prefetch = Prefetch(make, range(10**6), 2, "pf-early")
    with pytest.raises(RuntimeError) if how == "error" else nullcontext():
        with prefetch as items:
            for k, _ in items:
                if k == 5:
                    if how == "error":
                        raise RuntimeError("the step failed")
                    break
    assert started.is_set() and not prefetch.alive and not _threads("pf-early")


def test_wait_s_counts_the_callers_wait_and_prefetching_hides_it():
    def make(k: int) -> int:
        time.sleep(0.02)  # as a decode (sleep, like PIL's decoder, lets other threads run)
        return k

    waits = {}
    for depth in (0, 2):
        with Prefetch(make, range(10), depth) as items:
            for _ in items:
                time.sleep(0.08)  # as a step, slower than making an item
            waits[depth] = items.wait_s
    assert waits[0] >= 10 * 0.02
    assert waits[2] < 0.5 * waits[0]  # only the first item is waited for in full


def test_negative_depth_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        Prefetch(lambda k: k, range(3), -1)
