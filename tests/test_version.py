"""One version, written once (lkca/version.py; pyproject.toml reads it), and messages about an
old file name the lkca that wrote it, never the running one."""

import importlib.metadata
import json
from pathlib import Path

import pytest

import lkca
from lkca.errors import CheckpointError
from lkca.version import older_lkca

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_written_in_one_place():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "lkca.version.__version__" }' in pyproject
    assert "\nversion = " not in pyproject.split("[tool.setuptools.dynamic]")[0]
    assert importlib.metadata.version("lkca") == lkca.__version__ == "0.2.0"


@pytest.mark.parametrize("written_by, named", [
    ("0.1.0", "lkca 0.1.0"), (None, "an lkca before 0.2.0"), ("", "an lkca before 0.2.0"),
    (lkca.__version__, "an lkca before 0.2.0"), (3, "an lkca before 0.2.0"),
])
def test_an_old_file_names_the_version_that_wrote_it(written_by, named):
    assert older_lkca(written_by) == named


def test_an_old_comparison_checkpoint_names_the_lkca_its_record_names(tmp_path):
    """A 0.1.0 config.json of a comparison model rebuilt since: refused naming 0.1.0 (the record's
    lkca_version), never the running version."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "old"
    folder.mkdir()
    config = {"format": "lkca-pretrained", "task": "classification", "model": "swin_t_cifar",
              "num_classes": 10, "img_size": 32, "overrides": {}, "lkca_version": "0.1.0"}
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"head.weight": torch.zeros(10, 8)}, str(folder / "model.safetensors"),
              metadata={"lkca": json.dumps({**config, "model_args": {}})})
    with pytest.raises(CheckpointError) as err:
        lkca.from_pretrained(folder)
    message = str(err.value)
    assert "swin_t_cifar of lkca 0.1.0" in message and "load it with lkca 0.1.0" in message
    assert f"lkca {lkca.__version__}" not in message
