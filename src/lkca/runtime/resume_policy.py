"""What ``--resume`` may change: per config key, applied and recorded, or refused.

A checkpoint holds the config of the run that wrote it. On ``--resume`` every key of the new
config is compared with it: a key the task lists as resumable (where the run continues on
another device, shows no progress bar, stops earlier ...) takes its new value for real and the
change is recorded in the run's ``resume_history`` (checkpoints and ``summary.json``); any other
difference (model, data, batch, seed, learning rate, schedule ...) would be ignored by the
restored optimiser and scheduler or would make a different run, so it is refused with one line
naming the key, the saved and the new value (docs/errors.md, docs/design.md "Resume").
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lkca.config.compare import same_value
from lkca.config.echo import short_repr
from lkca.errors import ConfigError


def check_resume_config(saved: dict[str, Any], new: dict[str, Any], resumable: Iterable[str],
                        source: Path) -> dict[str, list[Any]]:
    """``{key: [saved, new]}`` of the resumable keys that changed; ConfigError for the first other
    key that differs (``source``: the checkpoint, named in the message)."""
    allowed = set(resumable)
    changed: dict[str, list[Any]] = {}
    for key in sorted((set(saved) | set(new)) - {"out"}):  # out: the folder resumed (it may move)
        old, value = saved.get(key), new.get(key)
        if same_value(old, value):
            continue
        if key not in allowed:
            raise ConfigError(
                f"--resume: {key} differs from the run's ({short_repr(old)} in {source}, now "
                f"{short_repr(value)}); {key} is part of the run, so resume with the run's own "
                f"settings (--config {source.parent.parent / 'config.yaml'}) or start a new run "
                "in another --out")
        changed[key] = [old, value]
    return changed
