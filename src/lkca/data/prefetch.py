"""Items made ahead on one background thread and handed over in order (docs/segmentation.md,
"How input is produced").

``Prefetch(make, keys, depth)`` iterates as the synchronous loop
``for key in keys: yield key, make(key)`` does, with the same items in the same order, while a
worker thread already calls ``make`` for the next keys: PIL decodes JPEG and PNG with the GIL
released, and torch's operators release it too, so the worker's decoding and augmentation run
while the caller's training step does. ``make`` must depend on its key alone (no state shared
with the caller that the caller changes): then an item is the same whenever it is made.

Bounds and failures:

- At most ``depth`` finished items wait, plus the one the worker is making: memory for
  ``depth + 1`` items beyond the one in use. ``depth=0`` is the synchronous loop itself, on the
  caller's thread, with no worker.
- An exception from ``make(key)`` is raised by the iteration at ``key``'s turn, the items before
  it handed over first, so a failure surfaces where the synchronous loop raises it.
- ``close()`` (leaving the ``with`` block, after a ``break``, an error or a signal) stops the worker
  and joins it: it finishes the item it is making, makes no more, and no thread is left behind.

:attr:`wait_s` is the time the caller spent waiting for items: blocked on the worker, or (with
``depth=0``) making them itself.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

import torch

K = TypeVar("K")
T = TypeVar("T")
_POLL_S = 0.05  # how often a blocked hand-over looks at the stop flag and at the worker's life
_END = object()


class _Failed:
    """What the worker hands over in place of the item whose ``make`` raised."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[K, T]):
    """``for key, item in Prefetch(make, keys, depth)``: see the module docstring."""

    def __init__(self, make: Callable[[K], T], keys: Iterable[K], depth: int,
                 name: str = "lkca-prefetch") -> None:
        if depth < 0:
            raise ValueError(f"prefetch depth must be >= 0, got {depth}")
        self._make, self._keys, self.depth, self.name = make, keys, depth, name
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.wait_s = 0.0

    def __enter__(self) -> Prefetch[K, T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[K, T]]:
        if self.depth == 0:
            for key in self._keys:
                t0 = time.perf_counter()
                item = self._make(key)
                self.wait_s += time.perf_counter() - t0
                yield key, item
            return
        if self._thread is not None:
            raise RuntimeError("a Prefetch is iterated once")
        self._thread = threading.Thread(target=self._work, args=(torch.get_num_threads(),),
                                        name=self.name, daemon=True)
        self._thread.start()
        while True:
            t0 = time.perf_counter()
            got = self._take()
            self.wait_s += time.perf_counter() - t0
            if got is _END:
                return
            if isinstance(got, _Failed):
                raise got.error
            yield got  # type: ignore[misc]

    def close(self) -> None:
        """Stop the worker (it finishes the item it is making) and wait for it to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        while not self._queue.empty():  # drop the items nobody will take
            self._queue.get_nowait()

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _work(self, threads: int) -> None:
        torch.set_num_threads(threads)  # the caller's intra-op threads, not the machine's cores
        try:
            for key in self._keys:
                if self._stop.is_set():
                    return
                item = self._make(key)
                if not self._hand_over((key, item)):
                    return
        except BaseException as err:  # raised by the caller at this key's turn
            self._hand_over(_Failed(err))
            return
        self._hand_over(_END)

    def _hand_over(self, got: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(got, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _take(self) -> object:
        while True:
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self.alive and self._queue.empty():
                    raise RuntimeError(f"{self.name} thread ended without handing over an item "
                                       "or an error") from None
