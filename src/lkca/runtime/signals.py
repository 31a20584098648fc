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
    """Training stopped by a signal after saving a resumable checkpoint (or, in start-up, before
    anything was saved)."""


class StartupStop:
    """Around a training command: SIGTERM / SIGINT before the run's :class:`StopRequest` is in
    place (reading the config, loading data) end the command at once with :class:`Interrupted`
    (one line, exit code 2) instead of a silent exit 143; the run itself installs its own handler
    for the time it trains, and the previous handlers come back on exit. Main thread only (Python
    delivers signals there); elsewhere it does nothing."""

    def __init__(self, command: str) -> None:
        self.command = command
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StartupStop:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        raise Interrupted(f"stopped by {signal_name(signum)} while {self.command} was starting or "
                          "ending, outside training; run the command again (add --resume if "
                          "OUT/checkpoints/last.pt exists)")

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def signal_name(signum: int) -> str:
    """``15`` -> ``"SIGTERM"``."""
    return signal.Signals(signum).name
