"""The reference reproduction that the launcher tests compare against."""

from __future__ import annotations

from pathlib import Path

import pytest
from reproduce_kit import write_digits_table


@pytest.fixture(scope="session")
def digits_reference(tmp_path_factory) -> Path:
    """An uninterrupted reproduction of the digits table, 2 seeds, with the local launcher."""
    from lkca.cli import main

    folder = tmp_path_factory.mktemp("reference")
    spec = write_digits_table(folder / "spec")
    runs = folder / "runs"
    assert main(["reproduce", "--table", str(spec), "--runs", str(runs), "--seeds", "2"]) == 0
    return runs
