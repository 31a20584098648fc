"""Config values compared as config values: what ``--resume`` and ``lkca reproduce`` both ask
("is this the run's setting?") with one answer."""

from __future__ import annotations

from typing import Any

from lkca.config.echo import short_repr

# Keys of a run's config.yaml that say how it was executed, not what it trains: a run that
# differs from its config only in these is still a run of that config.
EXECUTION_KEYS = frozenset({"out", "data_dir", "device", "progress", "compile", "eval_batch_size",
                            "stop_after_epochs", "stop_after_iters", "max_eval_images"})


def same_value(a: Any, b: Any) -> bool:
    """Equal as config values: tuples and lists alike, ints and floats alike (YAML may write 1.0
    as 1), dicts key by key."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def config_difference(saved: dict[str, Any], planned: dict[str, Any],
                      ignore: frozenset[str] = frozenset()) -> str:
    """The first key (execution keys and ``ignore`` aside) whose value differs, as "key: saved
    vs planned"; "" when the run is one of the planned config. Keys one of them lacks (a run
    written by an lkca without that option) are not compared."""
    for key in sorted(set(saved) & set(planned) - EXECUTION_KEYS - ignore):
        if not same_value(saved[key], planned[key]):
            return f"{key}: {short_repr(saved[key])} there, {short_repr(planned[key])} in the config"
    return ""
