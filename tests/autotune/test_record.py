"""A cached choice is not forever: how it was made is recorded, an entry missing a candidate or
made under load is timed again (and replaced by a cleaner measurement), a clean one is re-checked
against its runner-up once per process; ``lkca autotune --show`` / ``--clear``. Timings here come
from a simulated clock and a simulated load, so nothing depends on this machine's load."""

import json

import pytest
import torch

import lkca
from lkca.autotune import tuner
from lkca.autotune.cache import machine_name
from lkca.autotune.record import CANDIDATES, Choice, cleaner, from_entry, summary
from lkca.cli import main

pytestmark = pytest.mark.usefixtures("fresh_autotune")

KEY = "cpu float32 train B2 C8 h2 g4x4 k7x7"


class Sim:
    """Stands in for the timer (seconds = per-unit cost x units of the slice) and the load meter;
    counts the calls per implementation."""

    def __init__(self, monkeypatch, per_unit: dict[str, float], others: float) -> None:
        self.per_unit, self.others = per_unit, others
        self.calls = dict.fromkeys(CANDIDATES, 0)
        sim = self

        class Meter:
            def read(self):
                return {"others": sim.others, "loadavg_per_core": None}

        monkeypatch.setattr(tuner, "timer", lambda *a: self.run)
        monkeypatch.setattr(tuner, "LoadMeter", Meter)

    def run(self, impl: str, size: tuple[int, int, int]) -> float:
        self.calls[impl] += 1
        b, h, d = size
        return self.per_unit[impl] * b * h * d * 1e-3


def _step() -> None:
    torch.manual_seed(0)
    lkca.LKCA(8, 2, (4, 4))(torch.randn(2, 16, 8))


def _write(path, entry: dict) -> None:
    machine = machine_name(torch.device("cpu"))
    path.write_text(json.dumps({"format": "lkca-autotune/1", "machines": {machine: {KEY: entry}}}))


def _entry(path) -> dict:
    (entries,) = json.loads(path.read_text())["machines"].values()
    return entries[KEY]


FAST_CONV = {"conv": 1.0, "toeplitz": 3.0, "fft": 4.0}


def test_an_entry_records_how_the_choice_was_made(fresh_autotune, monkeypatch):
    Sim(monkeypatch, {"conv": 1.0, "toeplitz": 1.5, "fft": 100.0}, others=0.05)
    _step()
    entry = _entry(fresh_autotune)
    assert entry["impl"] == "conv" and set(entry["ms"]) == {"conv", "toeplitz"}
    assert entry["skipped"]["fft"].startswith("dropped: ") and "fastest of 3" in entry["skipped"]["fft"]
    assert entry["load"] == {"others": 0.05, "loadavg_per_core": None}
    assert entry["doubt"] == "" and entry["made"] == "race" and entry["when"].endswith("UTC")


def test_under_load_the_race_ends_in_a_final_and_the_entry_says_so(fresh_autotune, monkeypatch):
    quiet = Sim(monkeypatch, {"conv": 1.0, "toeplitz": 1.5, "fft": 100.0}, others=0.05)
    _step()
    assert "note" not in lkca.impl_choices(details=True)[KEY]
    tuner.reset_impl_choices()
    fresh_autotune.unlink()
    busy = Sim(monkeypatch, {"conv": 1.0, "toeplitz": 1.5, "fft": 100.0}, others=0.6)
    _step()
    choice = lkca.impl_choices(details=True)[KEY]
    assert choice["impl"] == "conv" and _entry(fresh_autotune)["doubt"].startswith(
        "other processes used 60%")  # the entry made under load is in doubt: re-timed next run
    assert choice["note"].startswith("under load (other processes used 60% of the cores while "
                                     "timing): the candidates within 4x the best timed again")
    final = {c: busy.calls[c] - quiet.calls[c] for c in CANDIDATES}  # conv, toeplitz: 2 x 5 calls
    assert final == {"conv": 10, "toeplitz": 10, "fft": 0}


def test_an_entry_missing_a_candidate_is_timed_again_and_replaced(fresh_autotune, monkeypatch):
    """The issue's cache: fft and toeplitz timed, conv (the fastest) never; an entry of an older
    lkca, which recorded neither drops nor load."""
    _write(fresh_autotune, {"impl": "fft", "ms": {"fft": 14.6, "toeplitz": 122.0}})
    sim = Sim(monkeypatch, FAST_CONV, others=0.6)  # even under load: it is complete now
    _step()
    choice = lkca.impl_choices(details=True)[KEY]
    assert choice["impl"] == "conv" and choice["source"] == "timed"
    assert choice["note"] == ("timed again (the entry has no timing of conv); replaces the "
                              "cached fft")
    assert sim.calls["conv"] > 0 and _entry(fresh_autotune)["impl"] == "conv"
    assert set(_entry(fresh_autotune)["ms"]) | set(_entry(fresh_autotune)["skipped"]) == set(CANDIDATES)


def _doubtful(impl: str, others: float) -> dict:
    return {"impl": impl, "ms": {"conv": 3.0, "toeplitz": 9.0, "fft": 1.0},
            "skipped": {}, "load": {"others": others}, "made": "race", "when": "then"}


def test_an_entry_made_under_load_is_replaced_by_a_cleaner_measurement(fresh_autotune, monkeypatch):
    _write(fresh_autotune, _doubtful("fft", others=0.9))
    Sim(monkeypatch, FAST_CONV, others=0.1)
    _step()
    assert lkca.impl_choices()[KEY] == "conv" and _entry(fresh_autotune)["impl"] == "conv"
    assert _entry(fresh_autotune)["doubt"] == ""


def test_an_entry_made_under_load_is_kept_over_a_measurement_under_more_load(fresh_autotune,
                                                                             monkeypatch):
    _write(fresh_autotune, _doubtful("fft", others=0.5))
    Sim(monkeypatch, FAST_CONV, others=0.8)
    _step()
    choice = lkca.impl_choices(details=True)[KEY]
    assert choice["impl"] == "fft" and choice["source"] == "cache"
    assert "under more load (other processes used 80% of the cores while timing): kept" in choice["note"]
    assert _entry(fresh_autotune)["load"]["others"] == 0.5  # the file is unchanged


def _clean(impl: str, ms: dict, skipped: dict | None = None) -> dict:
    return {"impl": impl, "ms": ms, "skipped": skipped or {}, "load": {"others": 0.02},
            "made": "race", "when": "then"}


def test_a_clean_entry_is_re_checked_against_its_runner_up_only(fresh_autotune, monkeypatch):
    _write(fresh_autotune, _clean("conv", {"conv": 1.0, "toeplitz": 3.0, "fft": 4.0}))
    sim = Sim(monkeypatch, FAST_CONV, others=0.02)
    _step()
    choice = lkca.impl_choices(details=True)[KEY]
    assert choice["impl"] == "conv" and choice["source"] == "cache"
    assert choice["note"].startswith("re-checked against toeplitz (") and choice["note"].endswith("agrees")
    assert sim.calls["fft"] == 0 and sim.calls["conv"] > 0 and sim.calls["toeplitz"] > 0
    before = dict(sim.calls)
    _step()  # once per process
    assert sim.calls == before


def test_a_clean_re_check_that_disagrees_times_every_candidate_again(fresh_autotune, monkeypatch):
    _write(fresh_autotune, _clean("toeplitz", {"conv": 1.2, "toeplitz": 1.0, "fft": 4.0}))
    sim = Sim(monkeypatch, FAST_CONV, others=0.02)
    _step()
    choice = lkca.impl_choices(details=True)[KEY]
    assert choice["impl"] == "conv" and sim.calls["fft"] > 0
    assert choice["note"] == ("timed again (a re-check found conv faster than toeplitz); replaces "
                              "the cached toeplitz")
    assert _entry(fresh_autotune)["impl"] == "conv"


def test_a_clean_entry_whose_rivals_were_dropped_is_used_as_is(fresh_autotune, monkeypatch):
    dropped = {c: "dropped: ..." for c in ("toeplitz", "fft")}
    _write(fresh_autotune, _clean("conv", {"conv": 1.0}, dropped))
    sim = Sim(monkeypatch, FAST_CONV, others=0.02)
    _step()
    choice = lkca.impl_choices(details=True)[KEY]
    assert choice["source"] == "cache" and choice["note"] == "every other candidate dropped"
    assert sum(sim.calls.values()) == 0


def test_entries_read_back_and_compare_by_load():
    assert from_entry({"impl": "auto"}, "") is None
    old = from_entry({"impl": "fft", "ms": {"fft": 1.0, "conv": "x"}, "load": {"others": True}}, "")
    assert old is not None and old.ms == {"fft": 1.0} and old.load == {} and old.made == ""
    busy, busier = (Choice("fft", "timed", load={"others": x}) for x in (0.4, 0.7))
    assert busy.doubt and cleaner(busy, busier) and not cleaner(busier, busy)
    assert cleaner(Choice("fft", "timed", load={"others": 0.1}), busy)
    assert not cleaner(busy, Choice("fft", "timed", load={}))  # no load known: not in doubt


# --- lkca autotune --show / --clear -----------------------------------------------------------------


def test_show_prints_one_line_per_shape_and_clear_resets(fresh_autotune, monkeypatch, capsys):
    Sim(monkeypatch, {"conv": 1.0, "toeplitz": 1.5, "fft": 100.0}, others=0.05)
    _step()
    torch.manual_seed(0)
    lkca.LKCA(8, 2, (5, 5))(torch.randn(2, 25, 8))
    assert main(["autotune", "--show"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"{fresh_autotune}: 2 shapes", machine_name(torch.device("cpu"))]
    assert lines[2].startswith(f"  {KEY}: conv (conv 16 ms, toeplitz 24 ms, fft dropped) "
                               "[others' load 5%; ")
    assert lines[3].startswith("  cpu float32 train B2 C8 h2 g5x5 k9x9: conv (") and len(lines) == 4
    assert main(["autotune"]) == 0 and capsys.readouterr().out.splitlines() == lines  # the default

    assert main(["autotune", "--clear"]) == 0
    assert capsys.readouterr().out == (f"cleared {fresh_autotune} (2 shapes): every shape is timed "
                                       "again on its first use\n")
    assert not fresh_autotune.exists()
    _step()  # in this process too: timed again, not taken from memory
    assert lkca.impl_choices(details=True)[KEY]["source"] == "timed"
    main(["autotune", "--show"])
    assert capsys.readouterr().out.splitlines()[0] == f"{fresh_autotune}: 1 shape"


def test_show_marks_entries_in_doubt_and_old_ones(fresh_autotune, capsys):
    _write(fresh_autotune, {"impl": "fft", "ms": {"fft": 14.6, "toeplitz": 122.0}})
    main(["autotune"])
    line = capsys.readouterr().out.splitlines()[2]
    assert line == (f"  {KEY}: fft (fft 14.6 ms, toeplitz 122 ms, conv never timed) "
                    "[older entry: re-timed next run]")
    doubtful = summary(KEY, _doubtful("fft", others=0.9))
    assert doubtful.endswith("[others' load 90%; then; in doubt (other processes used 90% of the "
                             "cores while timing): re-timed next run]")


def test_show_and_clear_without_a_cache_file(monkeypatch, capsys):
    monkeypatch.setenv("LKCA_AUTOTUNE_CACHE", "")
    assert main(["autotune", "--clear"]) == 0
    assert "no cache file (LKCA_AUTOTUNE_CACHE is empty)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:  # argparse: one or the other
        main(["autotune", "--show", "--clear"])
    assert exit_.value.code == 2
