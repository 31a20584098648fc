"""Value checks shared by the training configs (:class:`lkca.train.config.TrainConfig`,
:class:`lkca.seg.config.SegConfig`): one wording for every bound, one line each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lkca.config.echo import short_repr
from lkca.errors import ConfigError


def check_positive(config: Any, names: Iterable[str], null_ok: bool = False) -> None:
    """ConfigError for the first field of ``names`` that is not > 0 (None allowed if ``null_ok``)."""
    for name in names:
        value = getattr(config, name)
        if null_ok and value is None:
            continue
        if value <= 0:
            raise ConfigError(f"{name} must be positive{' or null' if null_ok else ''}, got {value}")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """ConfigError unless ``value`` is one of ``choices`` (the value quoted, bounded)."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {short_repr(value)}")
