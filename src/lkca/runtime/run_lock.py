"""One writer per directory: an exclusive, non-blocking OS lock on a file inside it.

The lock is ``fcntl.flock`` on ``DIR/<name>``. The kernel drops it when the last descriptor of
the open file goes away, so a holder killed by SIGKILL never leaves a stale lock behind; the file
itself stays (deleting a lock file races with a process that has just opened it) and only says
who held it last. A descriptor passed to a child process (``subprocess.Popen(pass_fds=...)``)
shares the lock: it is held until both have closed it, which is how ``lkca reproduce`` keeps a run
locked while the training it started is still alive (docs/reproduce.md, "Locks").

The lock of a run (``whole_directory=True``, what :class:`lkca.runtime.session.Session` takes)
is also an ``flock`` on the directory itself, taken first: deleting or replacing the lock file
while a run holds it (it stays after every run, so deleting it looks like tidying up) lets no
second writer in, since the directory's inode cannot be swapped under a run without moving the
run itself. The lock file is checked to be the very file locked (same inode as the path) and a
regular file (a FIFO or device there is refused in one line).

POSIX only (Linux, macOS); elsewhere acquiring raises :class:`LockUnavailable`.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import socket
import stat
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from lkca.bounded_files import parse_json
from lkca.errors import UserError

LOCK_NAME = ".lkca.lock"  # the lock of a command that writes a run (lkca train, lkca seg train)
_MAX_COMMAND = 160  # characters of the holder's command kept in the file and in messages


class LockHeld(UserError):
    """The directory is locked by another process; ``holder`` is what that process recorded."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


class LockUnavailable(UserError):
    """The lock file cannot be used (a link, not writable, or no ``fcntl`` on this system)."""


class DirectoryLock:
    """An exclusive lock on ``directory`` (created if missing), held while the ``with`` lasts.

    Acquiring never waits: a second holder gets :class:`LockHeld` at once, with a one-line
    message naming the holder's PID, host and command and what to do.
    """

    def __init__(self, directory: str | Path, name: str = LOCK_NAME, whole_directory: bool = False):
        self.directory = Path(directory)
        self.path = self.directory / name
        self.whole_directory = whole_directory
        self._fd: int | None = None
        self._dir_fd: int | None = None
        self._holder = 0  # the PID last recorded in the file

    @property
    def fd(self) -> int:
        """The descriptor holding the lock (to pass to a child that should share it)."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not held")
        return self._fd

    def acquire(self) -> DirectoryLock:
        """Take the lock now or raise :class:`LockHeld` (never waits); record this process."""
        try:
            import fcntl
        except ImportError:  # Windows
            raise LockUnavailable("run-directory locks need a POSIX system (fcntl); run lkca on "
                                  "Linux or macOS") from None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LockUnavailable(f"cannot create {self.directory} ({err.strerror or err}); "
                                  "check the folder's permissions") from None
        if self.whole_directory:
            self._lock_directory(fcntl)
        try:
            fd = self._lock_file(fcntl)
        except BaseException:
            self._close_directory()
            raise
        self._fd = fd
        self.record(os.getpid(), _this_command())
        return self

    def _lock_directory(self, fcntl: Any) -> None:
        """flock the directory itself (LockHeld when another process holds it)."""
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                             | os.O_CLOEXEC)
        except OSError as err:
            raise LockUnavailable(f"cannot open {self.directory} ({err.strerror or err}); check "
                                  "the folder's permissions") from None
        self._flock(fcntl, dir_fd, self.directory)
        self._dir_fd = dir_fd

    def _flock(self, fcntl: Any, fd: int, what: Path) -> None:
        """An exclusive flock on ``fd`` (the open ``what``), or ``fd`` closed and the refusal:
        LockHeld naming the holder, LockUnavailable where the file system has no locks."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise LockUnavailable(f"cannot lock {what} ({err.strerror or err}); the "
                                      "file system may not support locks: use a local folder"
                                      ) from None
            holder = read_holder(self.path)
            raise LockHeld(refusal(self.directory, holder), holder) from None

    def _close_directory(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def _lock_file(self, fcntl: Any) -> int:
        """Open and flock the lock file: the descriptor (LockHeld when held elsewhere;
        LockUnavailable for a link, a FIFO or device, or a file replaced while it was locked)."""
        for _ in range(3):  # the path replaced between open and flock: lock the new file
            try:
                # O_NOFOLLOW: a planted symlink must not make us write into another file;
                # O_NONBLOCK: a FIFO planted there must not hang the open
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                             | os.O_NONBLOCK, 0o644)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise LockUnavailable(f"{self.path} is a symbolic link; remove it and run "
                                          "again") from None
                raise LockUnavailable(f"cannot open the lock file {self.path} "
                                      f"({err.strerror or err}); check the folder's permissions"
                                      ) from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise LockUnavailable(f"{self.path} is not a regular file (a FIFO or device); "
                                      "remove it and run again")
            self._flock(fcntl, fd, self.path)
            if self._same_file(fd):
                return fd
            os.close(fd)
        raise LockUnavailable(f"{self.path} keeps being replaced while it is locked; stop what "
                              "replaces it and run again")

    def _same_file(self, fd: int) -> bool:
        """Whether the path still names the file open on ``fd`` (not deleted or replaced)."""
        try:
            now, held = os.lstat(self.path), os.fstat(fd)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def check_held(self) -> None:
        """Before a run commits a file: restore the lock file if it was deleted or replaced
        while held, so the record of who holds the run stays readable (the directory's lock
        keeps holding whatever happened to the file)."""
        if self._fd is None or self._same_file(self._fd):
            return
        try:
            import fcntl

            fd = self._lock_file(fcntl)
        except UserError:
            return  # the directory lock still holds; only the record could not be restored
        os.close(self._fd)
        self._fd = fd
        self.record(os.getpid(), _this_command())

    def record(self, pid: int, command: str) -> None:
        """Write who holds the lock (e.g. the child the descriptor was handed to)."""
        info = {"pid": pid, "host": socket.gethostname(), "command": command[:_MAX_COMMAND],
                "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        data = (json.dumps(info) + "\n").encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        self._holder = pid

    def release(self) -> None:
        """Let go of the lock (a child given the descriptor keeps holding it until it exits)."""
        if self._fd is None:
            return
        if self._holder == os.getpid():  # else the record names the child that shares the lock
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
        os.close(self._fd)  # drops the flock unless a child still has the descriptor
        self._fd = None
        self._close_directory()

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def read_holder(path: Path) -> dict[str, Any]:
    """What the holder of lock file ``path`` recorded ({} if nothing readable yet)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            text = os.read(fd, 4096).decode(errors="replace")
        finally:
            os.close(fd)
        info = parse_json(text, path)
    except (OSError, ValueError):  # FileLimit is a ValueError
        return {}
    return info if isinstance(info, dict) else {}


def refusal(directory: Path, holder: dict[str, Any]) -> str:
    """The one-line message for a directory locked by ``holder``."""
    if holder.get("pid"):
        who = f"PID {holder['pid']} on {holder.get('host', '?')}"
        if holder.get("command"):
            who += f" ({holder['command']})"
    else:
        who = "another process"
    return (f"{directory} is in use by {who}; wait for it to finish or stop that process, then "
            "run the command again")


def _this_command() -> str:
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "python"
