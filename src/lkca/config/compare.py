"""Config values compared as config values: what ``--resume`` and ``lkca reproduce`` both ask
("is this the run's setting?") with one answer."""

from __future__ import annotations

from typing import Any


def same_value(a: Any, b: Any) -> bool:
    """Equal as config values: tuples and lists alike, ints and floats alike (YAML may write 1.0
    as 1), dicts key by key."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)
