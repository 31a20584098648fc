"""One run as a child process: its command line, its logs and its lock, the same for every
launcher.

Every launcher runs ``python -m lkca train --config C [--data-dir D] --out R --seed S
--no-progress --resume|--overwrite`` (``lkca seg train`` for segmentation), so a run is the same
whichever launched it. ``--resume`` is passed when the run directory holds
``checkpoints/last.pt``, else ``--overwrite``: a run that never saved a checkpoint starts over,
deleting what a killed first attempt wrote (its ``config.yaml``, the epochs it logged), so
metrics.jsonl is that of one uninterrupted run.

Locks (docs/reproduce.md, "Locks"): the launcher takes ``R/.lkca-reproduce.lock`` (not the
``.lkca.lock`` that ``lkca train`` itself may take on R, so the two never collide) and hands the
descriptor to the child, so the run stays locked while the child lives, even if the launcher
is killed. The child gets SIGTERM when the launcher dies (Linux), which makes ``lkca train``
save a resumable checkpoint and stop; it ignores SIGUSR2, the signal a cluster sends the job to
announce preemption (the launcher stops it in order).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lkca.bounded_files import MAX_JSON_BYTES, FileLimit, parse_json, read_text
from lkca.reproduce.plan import PlannedRun
from lkca.runtime.run_lock import DirectoryLock

LAUNCH_LOCK = ".lkca-reproduce.lock"  # on the runs folder and on each run directory
LOG = "reproduce.log"  # one JSON line per start and exit of the run, in its directory


def command(run: PlannedRun, data_dir: str | None, resume: bool) -> list[str]:
    """The command line of ``run`` (absolute paths: it may start on another node)."""
    cmd = [sys.executable, "-m", "lkca", *(["train"] if run.task == "cls" else ["seg", "train"]),
           "--config", str(run.config.absolute())]
    if data_dir is not None and run.dataset != "digits":  # digits are bundled: no folder to read
        cmd += ["--data-dir", str(Path(data_dir).expanduser().absolute())]
    cmd += ["--out", str(run.out), "--seed", str(run.seed), "--no-progress"]
    return cmd + (["--resume"] if resume else ["--overwrite"])


def has_checkpoint(run: PlannedRun) -> bool:
    """Whether the run directory holds ``checkpoints/last.pt`` to resume from."""
    return (run.out / "checkpoints" / "last.pt").is_file()


@dataclass
class Child:
    """A started run: its process, the lock it shares, where its stderr goes."""

    run: PlannedRun
    proc: subprocess.Popen
    lock: DirectoryLock
    stderr_path: Path
    stderr_offset: int
    files: tuple[IO[bytes], ...]
    device: str
    shared: int


def start(run: PlannedRun, data_dir: str | None, lock: DirectoryLock, *, device: str = "cpu",
          shared: int = 1, env: dict[str, str] | None = None, launcher: str = "local") -> Child:
    """Start ``run`` (its lock already held) with stdout/stderr appended to ``stdout.log`` /
    ``stderr.log`` in its directory; ``shared``: how many runs share its device (recorded, for
    the measured throughput of :mod:`lkca.reproduce.cost`)."""
    cmd = command(run, data_dir, resume=has_checkpoint(run))
    out = (run.out / "stdout.log").open("ab")
    err_path = run.out / "stderr.log"
    err = err_path.open("ab")
    banner = f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode()
    for f in (out, err):
        f.write(banner)
        f.flush()
    parent, prctl = os.getpid(), _prctl()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, pass_fds=(lock.fd,),
                            preexec_fn=lambda: _child_setup(parent, prctl))
    lock.record(proc.pid, shlex.join(cmd))
    log_event(run, {"event": "start", "launcher": launcher, "launcher_pid": parent,
                    "command": cmd, "pid": proc.pid, "device": device, "shared": shared})
    return Child(run, proc, lock, err_path, err.tell(), (out, err), device, shared)


def finish(child: Child, finished: bool) -> dict[str, Any]:
    """Close the child's logs and lock; log and return its exit record (``rc``, ``finished``,
    ``last_stderr``: the last line it wrote to stderr)."""
    for f in child.files:
        f.close()
    child.lock.release()
    record = {"event": "exit", "rc": child.proc.returncode, "finished": finished,
              "last_stderr": last_line(child.stderr_path, child.stderr_offset)}
    log_event(child.run, record)
    return record


def last_line(path: Path, offset: int = 0) -> str:
    """The last non-empty line written to ``path`` after byte ``offset`` ("" if none)."""
    try:
        with path.open("rb") as f:
            f.seek(max(offset, os.path.getsize(path) - 65536))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1][:500] if lines else ""


def log_event(run: PlannedRun, record: dict[str, Any]) -> None:
    """Append ``record`` (with the time) as one JSON line to the run's ``reproduce.log``."""
    run.out.mkdir(parents=True, exist_ok=True)
    with (run.out / LOG).open("a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}) + "\n")


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's ``reproduce.log`` (unreadable lines skipped)."""
    rows = []
    try:
        lines = read_text(run_dir / LOG, MAX_JSON_BYTES).splitlines()
    except (OSError, FileLimit):
        return []
    for line in lines:
        try:
            rows.append(parse_json(line, run_dir / LOG, finite=False))
        except FileLimit:
            continue
    return rows


def _child_setup(parent: int, prctl: Any) -> None:
    """In the child before exec: SIGTERM when the launcher dies; SIGUSR2 ignored."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the launcher died before prctl: stop now
            os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    """libc's prctl on Linux (looked up in the launcher: the forked child only calls it)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None
