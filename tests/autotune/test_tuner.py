"""``impl="auto"``: timed on this machine, cached in memory and on disk, recorded and replayable,
never timing while it cannot (tracing, flop counting), and never disturbing the caller."""

import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import lkca
from lkca.autotune import tuner
from lkca.autotune.cache import machine_name
from lkca.autotune.timing import CONFIRM
from lkca.autotune.tuner import AutotuneWarning, ShapeKey, rule_impl
from lkca.layers.lkca import IMPLEMENTATIONS

pytestmark = pytest.mark.usefixtures("fresh_autotune")

# Toeplitz is 10-30x faster than fft and conv here on CPU (a small 6x6 grid, batch 256: one small
# matmul per head against many FFT / depthwise-convolution passes), so load cannot reorder them.
GAP = dict(dim=32, heads=2, grid=(6, 6), batch=256)


def _step(module, x):
    x = x.detach().requires_grad_()
    out = module(x)
    out.backward(torch.ones_like(out))
    return out.detach(), x.grad, module.weight.grad


def _mixer(dim, heads, grid, batch, **kw):
    torch.manual_seed(0)
    return lkca.LKCA(dim, heads, grid, **kw), torch.randn(batch, grid[0] * grid[1], dim)


def _one_thread():
    """One torch thread while timing: on a shared 2-core machine, two threads per process let
    other processes' load distort short timings most."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return threads


def test_choice_is_the_measured_fastest_on_a_shape_where_they_differ_by_3x():
    threads = _one_thread()
    try:
        module, x = _mixer(**GAP)
        _step(module, x)
        (key, choice), = lkca.impl_choices(details=True).items()
        assert key == "cpu float32 train B256 C32 h2 g6x6 k11x11" and choice["source"] == "timed"
        ms, impl = choice["ms"], choice["impl"]
        assert impl == min(ms, key=ms.get)  # the fastest of the tuner's own timings ...
        for other in set(IMPLEMENTATIONS) - set(ms):  # ... the others dropped for being slower
            assert choice["skipped"][other].startswith("dropped: "), choice
        # independently: each implementation alone, round-robin, median CPU time of 5 (CPU time,
        # unlike wall time, does not grow with other processes' load)
        v = torch.randn(256, 2, 36, 16, requires_grad=True)
        w = torch.randn(2, 11, 11, requires_grad=True)
        samples = {name: [] for name in IMPLEMENTATIONS}
        for _ in range(6):
            for name, fn in IMPLEMENTATIONS.items():
                start = time.process_time()
                fn(v, w, (6, 6)).backward(v.detach())
                samples[name].append(time.process_time() - start)
        medians = sorted((statistics.median(s[1:]), name) for name, s in samples.items())
        assert medians[0][0] * 3 < medians[1][0], medians  # the fastest by more than 3x
        assert impl == medians[0][1], (choice, medians)
    finally:
        torch.set_num_threads(threads)


def test_timing_leaves_the_rng_the_caller_graph_and_grads_alone():
    module, x = _mixer(**GAP)
    x.requires_grad_()
    rng = torch.get_rng_state()
    out = module(x)  # the first call times the three
    assert torch.equal(torch.get_rng_state(), rng)
    assert x.grad is None and module.weight.grad is None  # nothing was accumulated
    assert lkca.impl_choices(details=True)[next(iter(lkca.impl_choices()))]["source"] == "timed"
    out.backward(torch.ones_like(out))
    fixed, y = _mixer(**GAP, impl=lkca.impl_choices()["cpu float32 train B256 C32 h2 g6x6 k11x11"])
    ref = _step(fixed, y)
    torch.testing.assert_close(out.detach(), ref[0], rtol=0, atol=0)
    torch.testing.assert_close(x.grad, ref[1], rtol=0, atol=0)
    torch.testing.assert_close(module.weight.grad, ref[2], rtol=0, atol=0)


def test_keys_say_device_dtype_mode_and_shape():
    module, x = _mixer(16, 4, (4, 5), 3, kernel_size=(3, 5))
    with torch.no_grad():
        module(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module(x)
    assert set(lkca.impl_choices()) == {"cpu float32 infer B3 C16 h4 g4x5 k3x5",
                                        "cpu float32+autocast:bfloat16 train B3 C16 h4 g4x5 k3x5"}
    for text in lkca.impl_choices():
        assert str(ShapeKey.parse(text)) == text
    with pytest.raises(lkca.UserError, match="not an LKCA shape key"):
        ShapeKey.parse("cpu float32 B3")


def test_second_call_reuses_the_choice_without_timing(monkeypatch):
    module, x = _mixer(16, 2, (4, 4), 2)
    module(x)
    monkeypatch.setattr(tuner, "race", lambda *a, **k: pytest.fail("timed twice"))
    for _ in range(3):
        module(x)
    assert len(lkca.impl_choices()) == 1


def test_policies():
    module, x = _mixer(16, 2, (4, 4), 2)
    for policy in ("conv", "toeplitz", "fft"):
        lkca.set_impl_policy(policy)
        module(x)
        assert lkca.impl_choices(details=True)["cpu float32 train B2 C16 h2 g4x4 k7x7"] == {
            "impl": policy, "source": "policy"}
    lkca.set_impl_policy("rule")
    assert lkca.impl_policy() == "rule"
    module(x)
    key = "cpu float32 train B2 C16 h2 g4x4 k7x7"
    assert lkca.impl_choices(details=True)[key] == {"impl": "toeplitz", "source": "rule"}
    with pytest.raises(lkca.UserError, match="unknown LKCA impl policy 'fastest'"):
        lkca.set_impl_policy("fastest")


def test_rule_is_the_fastest_on_the_cpu_mixer_rows():
    """rule_impl's docstring claim, on the global-kernel rows of benchmarks/results/lkca_mixer_cpu.json
    (the implementations the benchmark timed there)."""
    data = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results"
                       / "lkca_mixer_cpu.json").read_text())
    for row in [r for r in data["rows"] if r["kernel"] == [2 * g - 1 for g in r["grid"]]]:
        ms = {impl: row["ms"][f"lkca_{impl}"] for impl in IMPLEMENTATIONS if f"lkca_{impl}" in row["ms"]}
        key = ShapeKey("cpu", "float32", True, row["batch"], row["dim"], row["heads"],
                       tuple(row["grid"]), tuple(row["kernel"]))
        assert rule_impl(key) == min(ms, key=ms.get), (row["grid"], ms)


# The shapes that matter now, at a small channel count and batch: the authors' LKCA (one kernel
# shared by all channels, 8x8 grid, global 15x15 kernel), small kernels on large grids, the
# segmentation grids with the global kernel. Real timing: every candidate is accounted for (timed
# in full, or dropped on a sub-problem predicting over CONFIRM x the best), the choice is the
# fastest of those timed, and the entry on disk says how it was made.
SHAPES = [
    pytest.param(24, 1, (8, 8), None, 4, id="authors-kernel-per-block-8x8-k15"),
    pytest.param(24, 6, (32, 32), 7, 1, id="32x32-k7"),
    pytest.param(12, 6, (64, 64), 7, 1, id="64x64-k7"),
    pytest.param(12, 6, (32, 32), None, 1, id="32x32-global"),
    pytest.param(4, 1, (64, 64), None, 1, id="64x64-global", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("dim, heads, grid, kernel, batch", SHAPES)
def test_the_shapes_that_matter_are_chosen_with_every_candidate_accounted_for(
        fresh_autotune, dim, heads, grid, kernel, batch):
    module, x = _mixer(dim, heads, grid, batch, kernel_size=kernel)
    _step(module, x)
    (key, choice), = lkca.impl_choices(details=True).items()
    assert key == str(ShapeKey("cpu", "float32", True, batch, dim, heads, grid,
                               module.kernel_size))
    ms, skipped = choice["ms"], choice.get("skipped", {})
    assert choice["impl"] == min(ms, key=ms.get) and set(ms) | set(skipped) == set(IMPLEMENTATIONS)
    for why in skipped.values():
        assert why.startswith("dropped: ") and "fastest of 3" in why
        assert float(why.rsplit("predicting ", 1)[1].split("x")[0]) > CONFIRM
    (entries,) = json.loads(fresh_autotune.read_text())["machines"].values()
    assert entries[key]["made"] == "race" and set(entries[key]["load"]) == {"others", "loadavg_per_core"}


def test_record_replays_and_pins_win_over_timing(monkeypatch):
    module, x = _mixer(16, 2, (4, 4), 2)
    module(x)
    record = lkca.impl_choices()
    (key, impl), = record.items()
    assert json.loads(json.dumps(record)) == record
    other = next(i for i in IMPLEMENTATIONS if i != impl)
    tuner.reset_impl_choices()  # as in a new process ...
    lkca.set_autotune_cache(None)  # ... with no disk cache
    monkeypatch.setattr(tuner, "race", lambda *a, **k: pytest.fail("a pinned key was timed"))
    lkca.pin_impl_choices({key: other})
    calls = []
    monkeypatch.setitem(IMPLEMENTATIONS, other, lambda *a, f=IMPLEMENTATIONS[other]: calls.append(1) or f(*a))
    module(x)
    assert calls and lkca.impl_choices(details=True)[key] == {"impl": other, "source": "pinned"}
    with pytest.raises(lkca.UserError, match="not one of conv, toeplitz, fft"):
        lkca.pin_impl_choices({key: "auto"})
    with pytest.raises(lkca.UserError, match="not an LKCA shape key"):
        lkca.pin_impl_choices({"B2": "fft"})
    lkca.pin_impl_choices(None)
    monkeypatch.undo()
    tuner.reset_impl_choices()
    module(x)
    assert lkca.impl_choices(details=True)[key]["source"] == "timed"


def test_no_timing_under_a_dispatch_mode_such_as_the_flop_counter(monkeypatch):
    from torch.utils.flop_counter import FlopCounterMode

    monkeypatch.setattr(tuner, "race", lambda *a, **k: pytest.fail("timed while counting"))
    module, x = _mixer(16, 2, (4, 4), 2)
    with FlopCounterMode(display=False) as counter:
        module(x)
    assert lkca.impl_choices(details=True)["cpu float32 train B2 C16 h2 g4x4 k7x7"]["source"] == "rule"
    assert counter.get_total_flops() == 2 * 2 * 16 * 16 * 16  # one (16 x 16) @ (16 x 32) bmm per head


def test_a_candidate_that_would_not_fit_in_memory_is_not_timed(monkeypatch):
    monkeypatch.setattr(tuner, "free_memory", lambda device: 3e5)
    module, x = _mixer(16, 2, (16, 16), 1)  # toeplitz: 2 * 256^2 fp32 matrices, x3 training
    module(x)
    (choice,) = lkca.impl_choices(details=True).values()
    assert choice["skipped"]["toeplitz"].startswith("not timed: needs about")
    assert "toeplitz" not in choice["ms"] and choice["impl"] != "toeplitz"


# --- the disk cache -------------------------------------------------------------------------------

CHILD = """
import json, sys, torch, lkca
torch.manual_seed(0)
m = lkca.LKCA(16, 2, (4, 4))
m(torch.randn(2, 16, 16))
print(json.dumps(lkca.impl_choices(details=True)))
"""
KEY = "cpu float32 train B2 C16 h2 g4x4 k7x7"


def _child(cache) -> dict:
    env = dict(os.environ, LKCA_AUTOTUNE_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])[KEY]


def test_a_new_process_reuses_the_disk_cache(fresh_autotune):
    first = _child(fresh_autotune)
    assert first["source"] == "timed"
    data = json.loads(fresh_autotune.read_text())
    (machine, entries), = data["machines"].items()
    assert machine.startswith(f"torch {torch.__version__} | ") and entries[KEY]["impl"] == first["impl"]
    # make the cached winner one that timing would not pick, on a quiet machine, the others
    # dropped (nothing to re-check it against): the next process must read, not time
    other = next(i for i in IMPLEMENTATIONS if i != first["impl"])
    entries[KEY] = {"impl": other, "ms": {other: 1.0}, "load": {"others": 0.0}, "made": "race",
                    "skipped": {c: "dropped: ..." for c in IMPLEMENTATIONS if c != other}}
    fresh_autotune.write_text(json.dumps(data))
    second = _child(fresh_autotune)
    assert second["source"] == "cache" and second["impl"] == other


def test_another_machine_or_torch_version_is_not_reused(fresh_autotune):
    data = {"format": "lkca-autotune/1",
            "machines": {"torch 0.1 | " + machine_name(torch.device("cpu")).split(" | ")[1]:
                         {KEY: {"impl": "conv", "ms": {}}}}}
    fresh_autotune.write_text(json.dumps(data))
    assert _child(fresh_autotune)["source"] == "timed"
    assert set(json.loads(fresh_autotune.read_text())["machines"]) == {
        f"torch 0.1 | {machine_name(torch.device('cpu')).split(' | ')[1]}",
        machine_name(torch.device("cpu"))}  # merged: the other machine's entry is kept


@pytest.mark.parametrize("content", ["{not json", '{"format": "lkca-autotune/1", "machines": []}',
                                     '["a list"]', "\x00\xff"])
def test_a_corrupt_cache_is_ignored_with_one_warning_and_rewritten(fresh_autotune, content):
    """Rewritten only when it says it is an lkca cache; any other file is left as it is."""
    fresh_autotune.write_text(content)
    with pytest.warns(AutotuneWarning, match="ignored") as caught:
        for grid in [(4, 4), (5, 5), (6, 6)]:
            module, x = _mixer(8, 2, grid, 1)
            module(x)
    assert len(caught) == 1
    assert [c["source"] for c in lkca.impl_choices(details=True).values()] == ["timed"] * 3
    if "lkca-autotune/1" not in content:
        assert fresh_autotune.read_text() == content  # not lkca's file: never replaced
        return
    (entries,) = json.loads(fresh_autotune.read_text())["machines"].values()
    assert len(entries) == 3


def test_an_unwritable_cache_warns_once_and_keeps_choices_in_memory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    lkca.set_autotune_cache(blocker / "autotune.json")  # its parent is a file: cannot be created
    with pytest.warns(AutotuneWarning, match="LKCA autotune cache .*a_file") as caught:
        for grid in [(4, 4), (5, 5)]:
            module, x = _mixer(8, 2, grid, 1)
            module(x)
            module(x)
    assert len(caught) == 1 and len(lkca.impl_choices()) == 2
    assert tuner.autotune_cache_path() == blocker / "autotune.json"


def test_no_cache_file_when_disabled(fresh_autotune, monkeypatch):
    monkeypatch.setenv("LKCA_AUTOTUNE_CACHE", "")
    assert tuner.autotune_cache_path() is None
    module, x = _mixer(8, 2, (4, 4), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module(x)
    assert not fresh_autotune.exists()


# --- DDP: every rank runs rank 0's choices ----------------------------------------------------------


def _rank(rank: int, store: str, results: str) -> None:
    import torch.distributed as dist

    from lkca.autotune.tuner import broadcast_impl_choices, pin_impl_choices

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        lkca.set_autotune_cache(None)
        pin_impl_choices({KEY: ["conv", "fft"][rank]})  # the ranks disagree ...
        module, x = _mixer(16, 2, (4, 4), 2)
        module(x)
        record = broadcast_impl_choices()  # ... until they pin rank 0's record
        module(x)
        Path(f"{results}.{rank}").write_text(json.dumps([record, lkca.impl_choices(details=True)]))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes
def test_broadcast_makes_every_rank_run_rank_0s_choices(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_rank, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2)
    for rank in (0, 1):
        record, details = json.loads((tmp_path / f"out.{rank}").read_text())
        assert record == {KEY: "conv"} and details[KEY] == {"impl": "conv", "source": "pinned"}
    assert tuner.broadcast_impl_choices() == lkca.impl_choices()  # no process group


def test_the_tracing_choice_is_marked_constant_without_importing_dynamo():
    """`_choose_while_tracing` carries what torch's decorator sets (so torch.compile / export
    treat its result as a constant), and importing the CLI does not load torch._dynamo."""
    marked = torch.compiler.assume_constant_result(lambda: None)
    assert vars(marked) == {"_dynamo_marked_constant": True} == {
        k: v for k, v in vars(tuner._choose_while_tracing).items() if k.startswith("_dynamo")}
    code = "import sys, lkca.cli; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
