"""Config files: ``base:`` inheritance, YAML 1.2 floats, clear errors, a lossless round trip."""

import pytest

from lkca.config import dump_config, read_config_file
from lkca.config.files import parse_yaml
from lkca.errors import ConfigError


def test_base_lies_underneath_and_mappings_merge(tmp_path):
    (tmp_path / "base.yaml").write_text("lr: 1.0e-3\nmodel_args: {depth: 6, dim: 32}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("base: ../base.yaml\nmodel_args: {depth: 2}\n")
    assert read_config_file(tmp_path / "sub" / "c.yaml") == {
        "lr": 1e-3, "model_args": {"depth": 2, "dim": 32}}


def test_floats_without_a_dot_are_floats():
    assert parse_yaml("[3e-3, 1E5, 1.0e5, -2e+2, 10, .5, 1e5x]") == [
        0.003, 100000.0, 100000.0, -200.0, 10, 0.5, "1e5x"]
    assert parse_yaml("1e-3") == 0.001


def test_dump_reads_back_to_the_same_values():
    values = {"lr": 1e-6, "name": "1e5", "img_scale": (2048, 512), "grad_clip": None}
    assert parse_yaml(dump_config(values)) == {**values, "img_scale": [2048, 512]}


def test_invalid_yaml_and_missing_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_config_file(f)
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "nope.yaml")
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        read_config_file(f)
