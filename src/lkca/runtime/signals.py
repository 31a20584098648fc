"""Stop signals: SIGTERM / SIGINT end a run at the next step with a resumable checkpoint."""

from __future__ import annotations

import signal
from typing import Any

from lkca.errors import UserError


class StopRequest:
    """SIGTERM / SIGINT set :attr:`signum`; the loop saves a resumable checkpoint and exits
    (:class:`Interrupted`). The previous handlers come back on exit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


class Interrupted(UserError):
    """Training stopped by a signal after saving a resumable checkpoint."""


def signal_name(signum: int) -> str:
    """``15`` -> ``"SIGTERM"``."""
    return signal.Signals(signum).name
