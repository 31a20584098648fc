"""The LKCA implementation choices of a run: its policy, its record, replay on resume, and one
set of choices for every DDP rank.

``impl="auto"`` chooses conv, toeplitz or fft per shape, by timing them on the device at hand
(docs/benchmarks.md, "How auto chooses"; :mod:`lkca.autotune.tuner`). A run records the
choices it made (``OUT/impl_choices.json`` and every ``last.pt``); ``--resume`` pins that record,
so the resumed run runs the same code even where today's timings would choose differently
(bit-exact resume), and after the first step every DDP rank pins rank 0's choices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lkca.atomic_files import write_atomic
from lkca.autotune.tuner import (
    broadcast_impl_choices,
    impl_choices,
    pin_impl_choices,
    reset_impl_choices,
    set_impl_policy,
)
from lkca.errors import CheckpointError
from lkca.runtime.distributed import Dist


def start_impl_policy(policy: str) -> None:
    """A run starts with its own policy (config key ``impl_policy``) and no earlier record or
    pins of this process."""
    reset_impl_choices()
    set_impl_policy(policy)


def replay_impl_choices(record: Mapping[str, Any] | None) -> None:
    """Pin the record a checkpoint holds (``None``: a checkpoint of lkca <= 0.2, nothing)."""
    if record is None:
        return
    if not isinstance(record, Mapping) or not all(isinstance(v, str) for v in record.values()):
        raise CheckpointError("the checkpoint's impl_choices record is damaged (expected "
                              "{shape key: impl}); resume from another checkpoint or retrain")
    pin_impl_choices(dict(record))


def share_impl_choices(env: Dist, path: Path | None) -> None:
    """After the first step: every rank pins rank 0's choices (a no-op with one process); rank 0
    writes them to ``path`` (``OUT/impl_choices.json``)."""
    record = broadcast_impl_choices(0) if env.world_size > 1 else impl_choices()
    if path is not None:
        write_atomic(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
