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
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from lkca.checkpoint.files import atomic_write
from lkca.config.files import dump_config
from lkca.errors import CheckpointError, UserError
from lkca.runtime.run_log import write_json


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
        atomic_write(self.config, dump_config(values).encode())

    def write_summary(self, summary: dict[str, Any]) -> None:
        """``summary.json``, atomically."""
        write_json(self.summary, summary)
