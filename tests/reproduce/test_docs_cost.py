"""docs/reproduce.md's cost table is what the planner computes from the configs today."""

from __future__ import annotations

import pytest
from reproduce_kit import ROOT

from lkca.reproduce.reproduction import cost_markdown


@pytest.mark.slow  # builds every table's models on the meta device to count their MACs
def test_the_cost_table_in_the_docs_is_current():
    doc = (ROOT / "docs" / "reproduce.md").read_text()
    block = doc.split("<!-- cost:start -->\n")[1].split("\n<!-- cost:end -->")[0]
    assert block == cost_markdown(ROOT / "configs"), (
        "docs/reproduce.md cost table is stale: regenerate it with the command written above it")
