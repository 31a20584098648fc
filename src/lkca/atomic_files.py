"""The one writer of every file lkca writes: whole files or nothing, never through a special file.

:func:`write_atomic` writes to a temporary file in the target's folder, fsyncs it, renames it over
the target (and fsyncs the folder), so a reader, a crash or a full disk sees the old file or the
complete new one, never half of one, and no temporary is left behind. Before anything is written
the target is checked (:func:`check_target`): a folder, a device node, a FIFO or a socket there is
refused, so lkca never replaces ``/dev/full`` or a named pipe by a regular file. A symbolic link
at the target is replaced by the new file, never written through. Every failure is one
:class:`~lkca.errors.OutputError` line naming the path, the cause (``No space left on device``,
``Read-only file system``, ``Permission denied``) and the fix, with the previous file intact.

Whether a file may be replaced at all is the caller's question: a command replaces only the file
the user named as its output (``--out``) or a file of its own (a run's, a cache's), and refuses an
existing file it chose a name for itself (``lkca seg predict`` beside the image) unless told to
(:func:`refuse_existing`).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lkca.errors import OutputError

KILL_AFTER_WRITE = "LKCA_KILL_AFTER_WRITE"  # tests only: SIGKILL this process after write K
_writes = 0

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device node"),
          (stat.S_ISBLK, "a device node"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"))


def special_kind(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file (``"a folder"``, ``"a device node"`` ...),
    following a link; None for a regular file, a missing path or a dangling link."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((kind for test, kind in _KINDS if test(mode)), None)


def check_target(path: str | Path, fix: str = "choose another --out") -> Path:
    """``path`` as a Path, or OutputError when a write there must not happen: the target is a
    folder, a device node, a FIFO or a socket (directly or through a link), a folder above it
    is a file, or the nearest existing folder above it is not writable (a read-only mount).
    Nothing is created."""
    path = Path(path)
    kind = special_kind(path)
    if kind is not None:
        raise OutputError(f"{path} is {kind}, not a file lkca may replace; {fix}")
    for parent in path.absolute().parents:  # the nearest folder that exists takes the write
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputError(f"cannot write {path}: {parent} is not a folder; {fix}")
            if not os.access(parent, os.W_OK | os.X_OK):
                cause = "read-only file system" if _read_only(parent) else "permission denied"
                raise OutputError(f"cannot write {path}: {parent} is not writable ({cause}); "
                                  f"{fix} in a writable folder")
            break
    return path


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def refuse_existing(path: Path, chosen: str) -> None:
    """OutputError when ``path`` exists (or is a link): for an output whose name the command
    ``chosen`` itself (e.g. beside its input), so a file kept there is never replaced unasked."""
    if path.exists() or path.is_symlink():
        raise OutputError(f"{path} already exists ({chosen}); replace it with --overwrite, or "
                          "name another file with --out")


def write_atomic(path: str | Path, data: bytes | Callable[[BinaryIO], None],
                 fix: str = "choose another --out") -> None:
    """Write ``data`` (bytes, or a function writing into the open binary file it is given, or
    to the file's name ``f.name``) to ``path`` atomically; parent folders are created.
    OutputError (one line, the previous file kept, no temporary left) when the target may not
    be replaced or the write fails."""
    path = check_target(path, fix)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.close(fd)
        with open(tmp, "wb") as f:  # f.name: the temporary's path, for writers that take a path
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
    except OSError as err:
        raise OutputError(_failure(path, err, fix)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    _after_write(path)


def _failure(path: Path, err: OSError, fix: str) -> str:
    kept = " (the previous file is kept)" if path.is_file() else ""
    cause = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free disk space or {fix}"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"{fix} in a writable folder"
    return f"could not write {path}: {cause}{kept}; {fix}"


def _fsync_folder(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _after_write(path: Path) -> None:
    """The crash tests' hook (docs/reproducibility.md): with ``LKCA_KILL_AFTER_WRITE=K`` in the
    environment, the process SIGKILLs itself right after its K-th completed atomic write, so a
    test can stop a run at every write boundary (a real kill: no handler, no flush runs)."""
    global _writes
    _writes += 1
    kill_at = os.environ.get(KILL_AFTER_WRITE)
    if kill_at and kill_at.isdigit() and _writes == int(kill_at):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
