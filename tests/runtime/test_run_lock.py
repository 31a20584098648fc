"""The run-directory lock: one holder at a time, refused with one line naming the holder, and gone
with its process even after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lkca.errors import UserError
from lkca.runtime.run_lock import DirectoryLock, LockHeld, LockUnavailable, read_holder

HOLD = """
import sys, time
from lkca.runtime.run_lock import DirectoryLock
lock = DirectoryLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until killed (or stdin closes)
"""


def test_a_second_holder_is_refused_with_one_line_naming_the_first(tmp_path):
    with DirectoryLock(tmp_path / "run") as first:
        holder = read_holder(first.path)
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(LockHeld) as err:
            DirectoryLock(tmp_path / "run").acquire()
    message = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in message
    assert f"is in use by PID {os.getpid()} on " in message and "run the command again" in message
    assert err.value.holder["pid"] == os.getpid()
    with DirectoryLock(tmp_path / "run"):  # released: free again, the record emptied
        pass
    assert read_holder(tmp_path / "run" / ".lkca.lock") == {}


def test_locks_with_other_names_do_not_collide(tmp_path):
    with DirectoryLock(tmp_path, ".a.lock"), DirectoryLock(tmp_path, ".b.lock"):
        with pytest.raises(LockHeld):
            DirectoryLock(tmp_path, ".a.lock").acquire()


def test_the_lock_dies_with_a_sigkilled_holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match=f"in use by PID {proc.pid} on .*{tmp_path.name}"):
            DirectoryLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with DirectoryLock(tmp_path) as lock:  # no stale lock: the kernel dropped it
        assert read_holder(lock.path)["pid"] == os.getpid()


def test_a_descriptor_handed_to_a_child_keeps_the_lock_after_the_parent_lets_go(tmp_path):
    lock = DirectoryLock(tmp_path).acquire()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, pass_fds=(lock.fd,))
    lock.record(child.pid, "child")
    lock.release()
    try:
        with pytest.raises(LockHeld, match=f"PID {child.pid} "):
            DirectoryLock(tmp_path).acquire()
    finally:
        child.communicate(b"")  # the child exits: the last descriptor closes
    DirectoryLock(tmp_path).acquire().release()


def test_a_planted_symlink_is_refused_not_followed(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lkca.lock").symlink_to(target)
    with pytest.raises(LockUnavailable, match="is a symbolic link; remove it"):
        DirectoryLock(tmp_path / "run").acquire()
    assert target.read_text() == "keep me"


def test_message_without_a_readable_record(tmp_path):
    lock = DirectoryLock(tmp_path).acquire()
    os.ftruncate(lock.fd, 0)
    with pytest.raises(LockHeld, match=f"{Path(tmp_path)} is in use by another process;"):
        DirectoryLock(tmp_path).acquire()
    lock.release()
