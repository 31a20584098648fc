"""Values quoted in messages, bounded: a message never grows with what it quotes.

A YAML alias bomb (a few hundred bytes whose nested aliases expand to billions of values) or a
huge string in a config must not turn a one-line error into gigabytes on stderr; every config
value a message quotes goes through :func:`short_repr`.
"""

from __future__ import annotations

import reprlib
from typing import Any

MAX_ECHO = 200  # characters of a quoted value (docs/errors.md)

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 3, 6, 6, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = MAX_ECHO, MAX_ECHO, 40


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to at most :data:`MAX_ECHO` characters (nested containers elided
    without being expanded)."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 3] + "..."
