"""One choice of ``auto`` and how it was made: what the cache file keeps, and when to doubt it.

A cache entry (:func:`entry`) records the winner, the time of each candidate timed in full, why
each other was not (dropped after a sub-problem, failed, too large for memory), the machine's
load while timing (:class:`lkca.autotune.timing.LoadMeter`) and whether that load puts the
choice in doubt. The re-check policy (docs/benchmarks.md, "How auto chooses") reads it back: :func:`recheck`,
from :func:`retime_reason` (time every candidate again), :func:`runner_up` (the one to re-check
against) and :func:`cleaner` (which of two measurements to keep).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

CANDIDATES = ("conv", "toeplitz", "fft")
DOUBT_SHARE = 0.25  # other processes used more of the cores than this while timing: in doubt
DOUBT_LOADAVG = 1.5  # without /proc: a 1-minute load average per core above this: in doubt


def load_doubt(load: dict[str, float | None]) -> str:
    """Why a measurement under ``load`` (a :class:`~lkca.autotune.timing.LoadMeter` reading)
    is in doubt, "" if it is not: other processes used over ``DOUBT_SHARE`` of the cores, or,
    where that is unknown, the load average per core is over ``DOUBT_LOADAVG``."""
    others, per_core = load.get("others"), load.get("loadavg_per_core")
    if others is not None:
        return (f"other processes used {others:.0%} of the cores while timing"
                if others > DOUBT_SHARE else "")
    if per_core is not None and per_core > DOUBT_LOADAVG:
        return f"load average {per_core:.2f} per core while timing"
    return ""


@dataclass
class Choice:
    """One choice of ``auto``: the implementation, where it came from, and what was measured."""

    impl: str
    source: str  # "timed", "cache" (timed earlier, here or on disk), "pinned", "rule", "policy"
    ms: dict[str, float] = field(default_factory=dict)  # ms of each candidate timed in full
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why not timed in full
    tuning_ms: float | None = None  # wall time the timing took (the first call's overhead)
    note: str = ""
    load: dict[str, float | None] = field(default_factory=dict)  # LoadMeter.read() while timing
    made: str = ""  # "race" (every candidate), or "" (unknown: an entry of an older lkca)
    when: str = ""  # UTC time of the measurement
    checked: bool = True  # measured or re-checked in this process (False: read from disk)

    @property
    def doubt(self) -> str:
        """Why the measurement is in doubt ("" if it is not): :func:`load_doubt` of its load."""
        return load_doubt(self.load)

    def as_dict(self) -> dict:
        out: dict = {"impl": self.impl, "source": self.source}
        if self.ms:
            out["ms"] = {k: round(v, 4) for k, v in self.ms.items()}
        if self.skipped:
            out["skipped"] = dict(self.skipped)
        if self.tuning_ms is not None:
            out["tuning_ms"] = round(self.tuning_ms, 3)
        if self.load:
            out["load"] = dict(self.load)
        if self.doubt:
            out["doubt"] = self.doubt
        if self.note:
            out["note"] = self.note
        return out


def entry(choice: Choice) -> dict:
    """The cache file's entry for a timed choice."""
    return {"impl": choice.impl, "ms": {k: round(v, 4) for k, v in choice.ms.items()},
            "skipped": dict(choice.skipped), "load": dict(choice.load), "doubt": choice.doubt,
            "made": choice.made, "when": choice.when}


def from_entry(data: dict, note: str) -> Choice | None:
    """The choice a cache entry records (None if it is not one); entries of older lkca versions
    (``impl`` and ``ms`` only) read as made by an unknown method, so they are timed again."""
    if data.get("impl") not in CANDIDATES:
        return None

    def mapping(name: str, kind: tuple[type, ...]) -> dict:
        value = data.get(name)
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(v, kind) and not isinstance(v, bool)}

    raw = mapping("load", (int, float))
    load = {k: raw[k] for k in ("others", "loadavg_per_core") if k in raw}
    return Choice(data["impl"], "cache", ms=mapping("ms", (int, float)), skipped=mapping("skipped", (str,)),
                  note=note, load=load, made=str(data.get("made") or ""),
                  when=str(data.get("when") or ""), checked=False)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def missing(choice: Choice, candidates: tuple[str, ...] = CANDIDATES) -> list[str]:
    """Candidates the entry says nothing about (neither timed in full nor skipped with a reason)."""
    return [c for c in candidates if c not in choice.ms and c not in choice.skipped]


def incomplete(choice: Choice) -> str:
    """Why a cached entry cannot be trusted whatever the load ("" if it can): a candidate it says
    nothing about, or an unknown method (an entry of an older lkca)."""
    if lost := missing(choice):
        return f"the entry has no timing of {', '.join(lost)}"
    return "" if choice.made == "race" else "the entry does not say how it was made"


def retime_reason(choice: Choice) -> str:
    """Why a cached entry must be timed again in full (every candidate), or "" if it need not:
    :func:`incomplete`, or in doubt."""
    return incomplete(choice) or choice.doubt


def runner_up(choice: Choice) -> str | None:
    """The second fastest of the candidates timed in full (None: the others were all dropped)."""
    rivals = sorted((ms, c) for c, ms in choice.ms.items() if c != choice.impl)
    return rivals[0][1] if rivals else None


def cleaner(new: Choice, old: Choice) -> bool:
    """Whether ``new`` was measured under less doubt than ``old`` (so it replaces it)."""
    if not new.doubt:
        return True
    if not old.doubt:
        return False
    a, b = new.load.get("others"), old.load.get("others")
    if a is None or b is None:
        a, b = new.load.get("loadavg_per_core"), old.load.get("loadavg_per_core")
    return a is not None and b is not None and a < b


def recheck(cached: Choice, race_pair: Callable[[list[str]], Choice],
            race_all: Callable[[], Choice]) -> Choice:
    """The choice for a cache entry's first use in this process.

    ``race_pair(candidates)`` times those on the full problem (sub-problems first);
    ``race_all()`` times every candidate, as the first time. An entry in doubt or incomplete
    (:func:`retime_reason`) is timed again in full and replaced if it was incomplete or the new
    timing is :func:`cleaner`; else the chosen races the runner-up, and a clean re-check that
    disagrees has every candidate timed again. A returned choice with source "timed" replaces
    the entry; "cache" keeps it (checked for this process).
    """
    why = retime_reason(cached)
    if not why:
        rival = runner_up(cached)
        if rival is None:  # every other candidate was dropped, cleanly: nothing to re-check
            return _kept(cached, "every other candidate dropped")
        check = race_pair([cached.impl, rival])
        if check.impl == cached.impl or check.doubt:
            times = ", ".join(f"{c} {t:.4g} ms" for c, t in check.ms.items())
            verdict = ": agrees" if check.impl == cached.impl else f", under load ({check.doubt}): kept"
            return _kept(cached, f"re-checked against {rival} ({times}){verdict}", check.tuning_ms)
        why = f"a re-check found {check.impl} faster than {cached.impl}"
    new = race_all()
    if new.source != "timed":
        return _kept(cached, f"{why}; nothing could be timed again")
    if incomplete(cached) or cleaner(new, cached):
        new.note = f"timed again ({why}); replaces the cached {cached.impl}"
        return new
    return _kept(cached, f"timed again ({why}) under more load ({new.doubt}): kept", new.tuning_ms)


def _kept(cached: Choice, note: str, tuning_ms: float | None = None) -> Choice:
    """The cached choice, checked in this process."""
    return Choice(cached.impl, "cache", ms=cached.ms, skipped=cached.skipped, tuning_ms=tuning_ms,
                  note=note, load=cached.load, made=cached.made, when=cached.when)


def summary(key: str, data: dict) -> str:
    """One line for ``lkca autotune --show``: the shape, the choice and how it was made."""
    choice = from_entry(data, "")
    if choice is None:
        return f"{key}: not an entry lkca can use (it is timed again)"
    parts = [f"{c} {ms:.4g} ms" for c, ms in sorted(choice.ms.items(), key=lambda kv: kv[1])]
    parts += [f"{c} {why.split(':', 1)[0]}" for c, why in sorted(choice.skipped.items())]
    parts += [f"{c} never timed" for c in missing(choice)]
    others = choice.load.get("others")
    how = [f"others' load {others:.0%}"] if others is not None else []
    how += [choice.when] if choice.when else []
    how += [f"in doubt ({choice.doubt}): re-timed next run"] if choice.doubt else []
    how += [] if choice.made == "race" else ["older entry: re-timed next run"]
    return f"{key}: {choice.impl} ({', '.join(parts)}) [{'; '.join(how)}]"
