"""What a run prints, and which process prints it: lines on rank 0 only, progress bars on rank 0
and only when stderr is a terminal (a log file or a pipe gets the one line per epoch or
evaluation instead of every redraw of the bar)."""

from __future__ import annotations

import sys
from typing import Any


def plural(count: int, noun: str) -> str:
    """``1 head``, ``2 heads``, ``0 epochs``: a count with its noun (regular plurals only)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _NoBar:
    """Stands in for a progress bar that is not shown."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool, total: int, initial: int = 0, desc: str = "") -> Any:
    """A tqdm bar (``update``, ``set_postfix``, ``close``), or a silent stand-in when disabled or
    when stderr is not a terminal (tqdm would write each redraw into the log)."""
    if not enabled or not sys.stderr.isatty():
        return _NoBar()
    from tqdm.auto import tqdm  # tqdm.auto probes for notebooks: only when a bar is shown

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


class Console:
    """A run's output: :meth:`print` and :meth:`progress` write on the main process only, and
    progress bars only when the run asked for them (``progress``) and stderr is a terminal."""

    def __init__(self, main: bool, progress: bool) -> None:
        self.main, self.show_progress = main, progress

    def print(self, text: str) -> None:
        """One line on stdout, flushed (so a log or a pipe sees it at once)."""
        if self.main:
            print(text, flush=True)

    def progress(self, total: int, initial: int = 0, desc: str = "") -> Any:
        """A progress bar over ``total`` steps starting at ``initial`` (see :func:`progress_bar`)."""
        return progress_bar(self.main and self.show_progress, total, initial, desc)
