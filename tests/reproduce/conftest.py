"""The reference reproduction that the launcher tests compare against."""

from __future__ import annotations

from pathlib import Path

import pytest
from reproduce_kit import write_digits_table


def _reproduce(folder: Path) -> Path:
    from lkca.cli import main

    spec = write_digits_table(folder / "spec")
    runs = folder / "runs"
    assert main(["reproduce", "--table", str(spec), "--runs", str(runs), "--seeds", "2"]) == 0
    return runs


@pytest.fixture(scope="session")
def digits_reference(tmp_path_factory, worker_id) -> Path:
    """An uninterrupted reproduction of the digits table, 2 seeds, with the local launcher; read
    only. Built once per test session: under pytest-xdist the workers share it through their
    common temporary folder (the recipe of pytest-xdist's docs: a file lock, first comer builds)."""
    if worker_id == "master":  # no xdist
        return _reproduce(tmp_path_factory.mktemp("reference"))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "digits_reference"
    with FileLock(str(shared) + ".lock"):
        done = shared / "done"
        if not done.exists():
            shared.mkdir(exist_ok=True)
            _reproduce(shared)
            done.touch()
    return shared / "runs"
