"""Where a command may write: never over a file it reads, never over a run's own files.

Every command that writes a file the user names (``lkca plot --out``, ``lkca export --out``,
``lkca kernels --out``, ``lkca erf --out``, ``lkca seg predict --out``) checks it here before
reading anything: :func:`check_output` refuses an output that is one of the command's inputs (or
inside an input folder it reads), a folder, a run directory's own file (``config.yaml``,
``metrics.jsonl``, ``summary.json``, ``impl_choices.json``, anything under its
``checkpoints/``, ``pretrained/`` or ``tensorboard/``) or a pretrained folder's own file
(``config.json``, ``model.safetensors``), and what :func:`lkca.atomic_files.check_target`
refuses (a device node, a FIFO, a file where a folder belongs, a read-only folder). A figure
beside a run (``RUN/curves.png``) is fine.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lkca.atomic_files import check_target
from lkca.checkpoint.pretrained_dir import CONFIG_NAME, WEIGHTS_NAME
from lkca.errors import UserError

# The files and folders a run writes in its directory (lkca.runtime.run_dir; --overwrite deletes
# exactly these)
RUN_FILES = frozenset({"config.yaml", "metrics.jsonl", "summary.json", "impl_choices.json",
                       "checkpoints", "pretrained", "tensorboard"})
RUN_FOLDERS = ("checkpoints", "pretrained", "tensorboard")


def is_run_dir(folder: Path) -> bool:
    """Whether ``folder`` holds a run (its ``config.yaml`` and a log or checkpoints)."""
    return (folder / "config.yaml").is_file() and (
        (folder / "metrics.jsonl").exists() or (folder / "checkpoints").is_dir())


def check_output(out: str | Path, inputs: Iterable[str | Path] = (), flag: str = "--out") -> Path:
    """``out`` as a Path, or UserError (one line naming the clash and the fix) when writing it
    would replace an input of the command or a file of a run or pretrained folder."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{flag} {out} is a folder; name the file to write (e.g. {out / 'out'}"
                        f"{_suffix(out)})")
    check_target(out, f"name another {flag}")  # a device, FIFO, a file as folder, read-only
    target = out.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if target == source:
            raise UserError(f"{flag} {out} is the file this command reads; name another file")
        if source.is_dir() and source in target.parents and (
                target.parent == source or target.parent.name in RUN_FOLDERS):
            if target.name in RUN_FILES | {CONFIG_NAME, WEIGHTS_NAME} or (
                    target.parent.name in RUN_FOLDERS):
                raise UserError(f"{flag} {out} is a file of {given}, which this command reads; "
                                "name a file outside it")
    parent = target.parent
    if parent.name in RUN_FOLDERS and is_run_dir(parent.parent):
        raise UserError(f"{flag} {out} is inside the run {parent.parent}'s {parent.name}/; name a "
                        "file outside the run's own folders (e.g. beside it)")
    if target.name in RUN_FILES and is_run_dir(parent):
        raise UserError(f"{flag} {out} is the run {parent}'s own {target.name}; name another file")
    if target.name in (CONFIG_NAME, WEIGHTS_NAME) and (
            (parent / CONFIG_NAME).exists() or (parent / WEIGHTS_NAME).exists()):
        raise UserError(f"{flag} {out} is a file of the pretrained folder {parent}; name a file "
                        "outside it")
    return out


def _suffix(out: Path) -> str:
    return ".png" if out.suffix == "" else out.suffix
