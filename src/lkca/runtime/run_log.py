"""The run log: ``metrics.jsonl`` (one object per epoch or evaluation) and its TensorBoard mirror."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lkca.atomic_files import write_atomic
from lkca.bounded_files import MAX_JSON_BYTES, FileLimit, parse_json, read_text
from lkca.errors import UserError


class RunLog:
    """Appends metrics to ``metrics.jsonl`` and mirrors them to TensorBoard when it is installed.

    Records are keyed by ``step_key``: ``"epoch"`` for classification, ``"iter"`` for segmentation.
    """

    def __init__(self, metrics_path: Path, tensorboard_dir: Path, enabled: bool = True,
                 step_key: str = "epoch") -> None:
        self.metrics_path, self.enabled, self.step_key = metrics_path, enabled, step_key
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(tensorboard_dir))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def truncate_after(self, step: int) -> None:
        """On resume, drop records past the checkpoint so the file matches an unbroken run."""
        if not self.enabled or not self.metrics_path.exists():
            return
        rows = [r for r in read_metrics(self.metrics_path, self.step_key) if r[self.step_key] <= step]
        write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows).encode())

    def start_afresh(self) -> None:
        """A new run: an empty ``metrics.jsonl`` (replacing any earlier one, atomically)."""
        if self.enabled and (self.metrics_path.exists() or self.metrics_path.is_symlink()):
            write_atomic(self.metrics_path, b"")

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (rewriting the file atomically) and mirror its numbers to TensorBoard."""
        if not self.enabled:
            return
        rows = read_metrics(self.metrics_path, self.step_key) if self.metrics_path.exists() else []
        rows.append(record)
        write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows).encode())
        if self.tb is not None:
            for key, value in record.items():
                if key != self.step_key and isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, record[self.step_key])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(path: Path, step_key: str | None = None) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, in order; UserError naming the file (and line)
    when it cannot be read or a line is not a JSON object (with a number under ``step_key``, when
    given): the one reader of the file (the run log on resume, ``lkca plot``)."""
    try:
        text = read_text(path, MAX_JSON_BYTES)
    except FileLimit as err:
        raise UserError(f"{err}; move it away to start the run log afresh, or point --out at "
                        "another run") from None
    except OSError as err:
        raise UserError(f"cannot read {path} ({err.strerror or err}); move it away to start the "
                        "run log afresh, or point --out at another run") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = parse_json(line, path, finite=False)
        except ValueError:  # FileLimit is a ValueError
            record = None
        if not isinstance(record, dict) or (step_key is not None and (
                not isinstance(record.get(step_key), (int, float))
                or isinstance(record.get(step_key), bool))):
            what = "a JSON object" if step_key is None else f"a JSON object with a numeric {step_key}"
            raise UserError(f"{path} line {number} is not {what} (corrupt or truncated file); "
                            "delete that line or rerun the training")
        records.append(record)
    return records


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically (``summary.json``)."""
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
