"""The autotuner's on-disk cache: one small JSON file of timed LKCA choices, per machine.

Layout::

    {"format": "lkca-autotune/1",
     "machines": {"torch 2.13.0+cpu | AMD EPYC 7B13 (2 threads)":
                  {"cpu float32 train B128 C192 h12 g8x8 k15x15":
                   {"impl": "toeplitz", "ms": {"toeplitz": 13.6, "fft": 69.3},
                    "skipped": {"conv": "dropped: ..."}, "load": {"others": 0.04, ...},
                    "doubt": "", "made": "race", "when": "2026-12-06 02:30 UTC"}}}}

(what an entry holds, and when it is timed again: :mod:`lkca.autotune.record`.)

A machine is the torch version and the device name (on CPU with the thread count), so another
GPU, CPU or torch version never reuses a timing. The file is re-read and merged before each write
and replaced atomically, so processes sharing it (DDP ranks, benchmark workers) lose nothing worse
than an entry that is timed again. A file that cannot be read or written is ignored with one
:class:`AutotuneWarning` per process: the choices then stay in memory; training never fails on it.
Only a cache lkca wrote is ever replaced or deleted (:func:`foreign_kind`): a path naming a
folder, a device node, a FIFO, a link or a file of other content is left exactly as it is.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import stat
import warnings
from pathlib import Path
from typing import Any

import torch

from lkca.atomic_files import special_kind, write_atomic
from lkca.bounded_files import FileLimit, read_json
from lkca.errors import OutputError

FORMAT = "lkca-autotune/1"
ENV = "LKCA_AUTOTUNE_CACHE"
MAX_BYTES = 4 * 1024 * 1024  # a cache is a few kB; a larger file is not one lkca wrote
_UNSET = object()


class AutotuneWarning(UserWarning):
    """The autotune cache was ignored (unreadable, corrupt or unwritable) or timing failed."""


def default_path() -> Path | None:
    """``$LKCA_AUTOTUNE_CACHE`` (empty: None, memory only), else ``lkca/autotune.json`` in the
    user's cache directory: ``$XDG_CACHE_HOME`` when it is an absolute path (the XDG base
    directory rule: a relative one is ignored), else ``~/.cache``."""
    env = os.environ.get(ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lkca" / "autotune.json"


def foreign_kind(path: Path) -> str | None:
    """None when ``path`` is missing or is a cache file lkca wrote (a regular file holding a JSON
    object whose ``format`` is :data:`FORMAT`); else what it is instead (``"a symbolic link"``,
    ``"a folder"``, ``"a device node"``, ``"a file that is not an lkca autotune cache"``): a file
    lkca never replaces or deletes."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if not stat.S_ISREG(mode):
        return special_kind(path) or "not a regular file"
    try:
        data = read_json(path, MAX_BYTES)
    except (OSError, FileLimit):
        data = None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return None
    return "a file that is not an lkca autotune cache"


@functools.cache
def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def machine_name(device: torch.device) -> str:
    """``"torch <version> | <device name>"``: what a cached timing is valid for."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        name = f"{_cpu_name()} ({torch.get_num_threads()} threads)"
    else:
        name = device.type
    return f"torch {torch.__version__} | {name}"


def _valid_entry(entry: Any) -> bool:
    """Whether a cache entry is one :meth:`DiskCache.save` writes: ``impl`` a name, ``ms`` (if
    present) a mapping of names to finite, non-negative milliseconds."""
    if not isinstance(entry, dict) or not isinstance(entry.get("impl"), str):
        return False
    ms = entry.get("ms", {})
    return isinstance(ms, dict) and all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        and math.isfinite(v) and v >= 0 for k, v in ms.items())


class DiskCache:
    """Read and write the cache file; a file that fails warns once per process, whatever fails."""

    def __init__(self) -> None:
        self._path: Any = _UNSET
        self._warned: set[str] = set()

    def path(self) -> Path | None:
        return default_path() if self._path is _UNSET else self._path

    def set_path(self, path: str | Path | None) -> None:
        self._path = None if path is None or str(path) == "" else Path(path).expanduser()

    def _warn(self, path: Path, problem: str) -> None:
        if str(path) not in self._warned:
            self._warned.add(str(path))
            warnings.warn(f"LKCA autotune cache {path}: {problem}; timings stay in memory until it "
                          f"can be written (set {ENV} to another file, or empty for none)",
                          AutotuneWarning, stacklevel=4)

    def _read(self, path: Path) -> dict[str, dict[str, dict]]:
        """All machines' entries; {} for a missing file. A file that is not exactly what
        :meth:`save` writes (unreadable, a FIFO or device, over :data:`MAX_BYTES`, nested too
        deep, a key twice, an entry whose ``impl`` is not a name or whose ``ms`` is not a mapping
        of names to finite times) warns once, naming the file, and counts as {}: the next save
        replaces it atomically. Read by the bounded reader of every lkca file."""
        try:
            data = read_json(path, MAX_BYTES)
        except FileNotFoundError:
            return {}
        except (OSError, FileLimit) as err:
            problem = err.problem if isinstance(err, FileLimit) else (
                f"{type(err).__name__}: {err.strerror or err}")
            self._warn(path, f"ignored, cannot be read ({problem})")
            return {}
        machines = data.get("machines") if isinstance(data, dict) else None
        if (not isinstance(data, dict) or data.get("format") != FORMAT
                or not isinstance(machines, dict)
                or not all(isinstance(m, dict) and all(_valid_entry(e) for e in m.values())
                           for m in machines.values())):
            self._warn(path, f"ignored, not a {FORMAT} file as lkca writes it")
            return {}
        return machines

    def load(self, machine: str) -> dict[str, dict]:
        """This machine's entries ``{shape key: {"impl", "ms"}}`` ({} if none or no file)."""
        path = self.path()
        return dict(self._read(path).get(machine, {})) if path is not None else {}

    def entries(self) -> dict[str, dict[str, dict]]:
        """Every machine's entries ``{machine: {shape key: entry}}`` ({} if none or no file)."""
        path = self.path()
        return self._read(path) if path is not None else {}

    def clear(self) -> int:
        """Delete the cache file (nothing if there is none); the number of shapes it held.
        OutputError (one line, nothing
        deleted) when the path is not a cache lkca wrote (:func:`foreign_kind`: a folder, a device,
        a link, a file of other content) or cannot be deleted (a read-only folder)."""
        path = self.path()
        if path is None:
            return 0
        kind = foreign_kind(path)
        if kind is not None:
            named = f"${ENV}" if os.environ.get(ENV) else "the cache path"
            raise OutputError(f"{named} {path} is {kind}; lkca deletes only its own autotune "
                              f"cache: point {ENV} at lkca's cache file (by default "
                              "~/.cache/lkca/autotune.json) or unset it")
        with warnings.catch_warnings():  # entries lkca would not write are deleted all the same
            warnings.simplefilter("ignore", AutotuneWarning)
            count = sum(len(entries) for entries in self._read(path).values())
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            raise OutputError(f"cannot delete {path} ({err.strerror or err}); delete it yourself "
                              f"or set {ENV} to a file in a writable folder") from None
        return count

    def save(self, machine: str, key: str, entry: dict) -> None:
        """Add one entry: re-read, merge, replace the cache atomically. A path holding anything
        but a cache lkca wrote (:func:`foreign_kind`) is left as it is, with the warning."""
        path = self.path()
        if path is None:
            return
        machines = self._read(path)
        kind = foreign_kind(path)
        if kind is not None:
            self._warn(path, f"left as it is, since it is {kind}")
            return
        machines.setdefault(machine, {})[key] = entry
        text = json.dumps({"format": FORMAT, "machines": machines}, indent=1, sort_keys=True)
        try:
            write_atomic(path, (text + "\n").encode(), fix=f"set {ENV} to another file")
        except OutputError as err:
            self._warn(path, f"cannot be written ({err})")
