"""The run directory: the one place that sets it up and names its files (docs/design.md).

::

    OUT/config.yaml                 the resolved config (every field)
    OUT/metrics.jsonl               one record per epoch (classification) or evaluation (segmentation)
    OUT/summary.json                the run's result (and its effective recipe), written when it ends
    OUT/checkpoints/last.pt         training state: resumes the run on its own (weights_only load)
    OUT/checkpoints/last.safetensors   weights + metadata record (eval, export, from_pretrained)
    OUT/checkpoints/best.safetensors   classification: the best test top-1 so far
    OUT/pretrained/                 classification: the best model as a pretrained folder
    OUT/impl_choices.json           the LKCA implementation chosen per shape (docs/design.md)
    OUT/tensorboard/                when tensorboard is installed

A new run never writes over an earlier one (docs/reproducibility.md, "The run directory"): a
folder that holds a run's files is refused unless the command continues it (``--resume``) or
says to delete it (``--overwrite``, which names what it deletes); a folder holding any other
file is refused; the default folder (no ``--out``) takes the next free name, ``NAME-2``,
``NAME-3`` ... (:func:`free_run_dir`), claimed atomically, so two runs started at the same
moment take two names (:func:`claim_run_dir`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lkca.atomic_files import write_atomic
from lkca.checkpoint.outputs import RUN_FILES
from lkca.config.files import dump_config
from lkca.errors import CheckpointError, UserError
from lkca.runtime.run_lock import DirectoryLock, LockHeld
from lkca.runtime.run_log import write_json

# The files and folders a run writes in its directory (everything --overwrite deletes) are
# lkca.checkpoint.outputs.RUN_FILES (no command writes over them); these are the ones that may
# lie in a run's folder without being the run: the locks (this module's and lkca reproduce's)
# and the logs lkca reproduce keeps beside the run it launches.
LAUNCH_FILES = frozenset({".lkca.lock", ".lkca-reproduce.lock", "stdout.log", "stderr.log",
                          "reproduce.log"})
MAX_FREE_NAMES = 1000  # NAME-2 ... NAME-1000: past that the folder is named with --out


def free_run_dir(base: Path, taken: frozenset[Path] = frozenset()) -> Path:
    """``base`` when it holds no run and nothing else, else the first of ``base-2``,
    ``base-3`` ... that does not exist (or is empty), skipping ``taken`` (names another process
    claimed first): the default run directory, which never overwrites an earlier run."""
    for n in range(1, MAX_FREE_NAMES + 1):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        if path in taken:
            continue
        if not path.exists() and not path.is_symlink():
            return path
        if path.is_dir() and not path.is_symlink() and not _entries(path):
            return path
    raise UserError(f"{base} and {base.name}-2 ... {base.name}-{MAX_FREE_NAMES} all hold runs; "
                    "name the run directory with --out")


@dataclass(frozen=True)
class RunPlace:
    """Where a run goes: ``path``, a ``note`` for its first log line, and ``next_free``: the
    default folder's name when the path is a free default name (a start that finds it claimed
    by another run starting at the same moment takes the next free one, :func:`claim_run_dir`),
    None for a folder the user named (or ``--resume`` / ``--overwrite``)."""

    path: Path
    note: str
    next_free: Path | None


def choose_run_dir(out: str | None, default: Path, resume: bool, overwrite: bool) -> RunPlace:
    """The run directory of a command: ``out`` when given, else ``default`` (with ``--resume``
    or ``--overwrite``: that folder; for a new run: the first free name, :func:`free_run_dir`,
    the note saying so). Checked at once (:meth:`RunDir.check_new`), so a refused folder costs
    no data loading."""
    if out is None and not resume and not overwrite:
        path = free_run_dir(default)
        note = (f" ({default} holds an earlier run; the default folder takes the next free name)"
                if path != default else "")
        place = RunPlace(path, note, default)
    else:
        place = RunPlace(Path(out) if out is not None else default, "", None)
    RunDir(place.path).check_new(resume, overwrite)
    return place


def claim_run_dir(run_dir: RunDir, resume: bool, overwrite: bool, next_free: Path | None
                  ) -> tuple[RunDir, DirectoryLock, list[str]]:
    """Create the run directory and take its lock (:mod:`lkca.runtime.run_lock`) before any
    write; returns the directory, its held lock and the entries ``--overwrite`` deletes.

    For a folder the user named, a second writer is refused (LockHeld naming the first). For a
    free default name (``next_free`` the default folder), the claim is atomic: mkdir, then the
    lock, then the folder checked again under the lock; a start that loses the race (the lock
    held, or the folder holding the winner's files) takes the next free name and claims that."""
    taken: set[Path] = set()
    while True:
        lost: UserError
        try:
            run_dir.check_new(resume, overwrite)  # an earlier run or foreign files: nothing made
        except UserError as err:
            if next_free is None:
                raise
            lost = err
        else:
            run_dir.create()
            lock = DirectoryLock(run_dir.root, whole_directory=True)
            try:
                lock.acquire()
            except LockHeld as err:
                if next_free is None:
                    raise
                lost = err
            else:
                try:
                    return run_dir, lock, run_dir.check_new(resume, overwrite)  # under the lock
                except UserError as err:
                    lock.release()
                    if next_free is None:
                        raise
                    lost = err
        taken.add(run_dir.root)
        if len(taken) >= MAX_FREE_NAMES:
            raise lost
        run_dir = RunDir(free_run_dir(next_free, frozenset(taken)))


def _entries(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class RunDir:
    """Paths of a run directory and the writes that set it up."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.checkpoints = self.root / "checkpoints"
        self.config = self.root / "config.yaml"
        self.metrics = self.root / "metrics.jsonl"
        self.tensorboard = self.root / "tensorboard"
        self.summary = self.root / "summary.json"
        self.pretrained = self.root / "pretrained"
        self.impl_choices = self.root / "impl_choices.json"

    def state(self, tag: str = "last") -> Path:
        """``checkpoints/<tag>.pt``: the training state that resumes the run."""
        return self.checkpoints / f"{tag}.pt"

    def weights(self, tag: str = "last") -> Path:
        """``checkpoints/<tag>.safetensors``: weights and the metadata record."""
        return self.checkpoints / f"{tag}.safetensors"

    def check_resume(self, resume: bool) -> None:
        """CheckpointError when ``--resume`` finds nothing to resume from."""
        if resume and not self.state().exists():
            raise CheckpointError(f"--resume: no checkpoint at {self.state()}; start without "
                                  "--resume or point --out at the run to continue")
        if resume and not self.state().is_file():
            raise CheckpointError(f"--resume: {self.state()} is not a file (a folder or device); "
                                  "restore the run's checkpoint or start over with --overwrite")

    def check_new(self, resume: bool, overwrite: bool) -> list[str]:
        """Whether a run may start in this folder; the entries ``--overwrite`` deletes.

        ``--resume`` needs ``checkpoints/last.pt`` (CheckpointError otherwise). A new run needs
        a folder that does not exist or holds no run: one that holds a run's files is refused
        unless ``overwrite`` (then those are what :meth:`clear` deletes); one that holds any
        other file, or is not a folder, is refused whatever the flags (UserError, one line,
        nothing touched)."""
        if resume and overwrite:
            raise UserError("--resume continues the run in --out and --overwrite deletes it; pass "
                            "one of them")
        self.check_resume(resume)
        for folder in (self.checkpoints, self.pretrained, self.tensorboard):
            if folder.is_symlink():
                raise UserError(f"{folder} is a symbolic link; the run writes only into its own "
                                "folder: remove the link or choose another --out")
            if resume and folder.exists() and not folder.is_dir():
                raise UserError(f"{folder} is a file where the run keeps a folder; move it away "
                                "and run again")
        if resume or (not self.root.exists() and not self.root.is_symlink()):
            return []
        if not self.root.is_dir():
            raise UserError(f"--out {self.root} is not a folder; choose a new or empty folder "
                            "for the run")
        entries = _entries(self.root)
        foreign = [e for e in entries if e not in RUN_FILES and e not in LAUNCH_FILES]
        if foreign:
            shown = ", ".join(repr(e)[:60] for e in foreign[:3]) + (" ..." if len(foreign) > 3
                                                                     else "")
            raise UserError(f"--out {self.root} holds files that are not a run's ({shown}); lkca "
                            "writes a run only into a new or empty folder or its own run: choose "
                            "another --out")
        own = [e for e in entries if e in RUN_FILES]
        if own and not overwrite and not self.state().is_file():
            raise UserError(f"--out {self.root} holds a run that saved no checkpoint "
                            f"({', '.join(own)}); start it over with --overwrite (deletes "
                            "those), or choose another --out")
        if own and not overwrite:
            raise UserError(f"--out {self.root} already holds a run ({', '.join(own)}); continue "
                            "it with --resume, delete it and start over with --overwrite, or "
                            "choose another --out (a config.yaml taken from a run names that "
                            "run in its out:)")
        return own

    def clear(self, entries: list[str]) -> None:
        """Delete ``entries`` (a run's own files and folders, from :meth:`check_new`) without
        following a link: a link is removed, never what it points to."""
        for name in entries:
            path = self.root / name
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            except OSError as err:
                raise UserError(f"--overwrite: cannot delete {path} ({err.strerror or err}); "
                                "delete it yourself or choose another --out") from None

    def create(self) -> None:
        """Create the run directory itself (before its lock is taken inside it); UserError naming
        --out when it cannot be."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"output directory {self.root} is not writable "
                            f"({err.strerror or err}); choose another --out") from None

    def prepare(self) -> None:
        """Create ``checkpoints/``, remove temporary files a killed process left mid-write, and
        check that the folder takes writes (UserError naming --out otherwise).

        Nothing is ever written through a symbolic link inside the run directory: every file is
        replaced atomically (a planted ``config.yaml`` link is replaced, its target untouched),
        the writability probe is a new file of a unique name, and a folder of the run that is a
        link (``checkpoints/``, ``pretrained/``, ``tensorboard/``) is refused."""
        for folder in (self.checkpoints, self.pretrained, self.tensorboard):
            if folder.is_symlink():
                raise UserError(f"{folder} is a symbolic link; the run writes only into its own "
                                "folder: remove the link or choose another --out")
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            for stale in self.checkpoints.glob(".*.tmp"):
                stale.unlink()
            # mkstemp creates with O_EXCL: never opens an existing file or link
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".write_test.")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise UserError(f"output directory {self.root} is not writable "
                            f"({err.strerror or err}); choose another --out") from None

    def write_config(self, values: dict[str, Any]) -> None:
        """``config.yaml``: every field of the run's config, atomically (a full disk keeps the
        previous file; a link there is replaced, never written through)."""
        write_atomic(self.config, dump_config(values).encode())

    def write_summary(self, summary: dict[str, Any]) -> None:
        """``summary.json``, atomically."""
        write_json(self.summary, summary)
