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


def _refused(tmp_path, text: str | bytes, name: str = "c.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400 and str(path) in message, message
    return message


def test_a_key_given_twice_is_refused_with_its_lines(tmp_path):
    message = _refused(tmp_path, "lr: 1\nepochs: 3\nlr: 2\n")
    assert "key 'lr' is given twice (lines 1 and 3)" in message


def test_deep_nesting_self_reference_and_alias_bombs_are_refused(tmp_path):
    assert "nests deeper than" in _refused(tmp_path, "a: " + "[" * 100_000 + "]" * 100_000)
    assert "nests deeper than" in _refused(tmp_path, "a: " + "[" * 40 + "]" * 40)
    assert "refers to itself" in _refused(tmp_path, "a: &x [1, *x]\n")
    bomb = "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    bomb += "model_args: {x: *i}\n"  # 9**9 values once expanded
    assert len(bomb) < 500 and "expands to more than" in _refused(tmp_path, bomb)


def test_unreadable_configs_name_the_file(tmp_path):
    assert "not UTF-8 text" in _refused(tmp_path, b"lr: \xff\xfe\n")
    assert "is not valid YAML" in _refused(tmp_path, b"lr: 1\x00\x01\n")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="is a directory; pass a YAML file"):
        read_config_file(tmp_path / "folder")


def test_a_base_chain_that_loops_is_refused(tmp_path):
    assert "loops back" in _refused(tmp_path, "base: c.yaml\nlr: 1\n")
    (tmp_path / "b.yaml").write_text("base: c.yaml\n")
    assert "loops back" in _refused(tmp_path, "base: b.yaml\n")


def test_messages_quote_names_not_content(tmp_path):
    from lkca.train.config import build_config

    secret = tmp_path / "secret"
    secret.write_text("shadowuser:$6$abcdefgh:19000:0:99999:7:::\n")
    (tmp_path / "c.yaml").write_text(f"base: {secret}\n")
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path / "c.yaml")
    assert "abcdefgh" not in str(err.value) and "shadowuser" not in str(err.value)
    (tmp_path / "d.yaml").write_text("'shadowuser:x:0:0': 1\n")
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path / "d.yaml")
    assert "shadowuser" not in str(err.value) and "not a config field name" in str(err.value)


@pytest.mark.parametrize("text, expected", [
    ("lr: .nan", "lr must be a finite number"), ("lr: .inf", "lr must be a finite number"),
    ("grad_clip: -1", "grad_clip must be positive or null"),
    ("max_steps_per_epoch: -1", "max_steps_per_epoch must be positive or null"),
    ("stop_after_epochs: -1", "stop_after_epochs must be positive or null"),
    ("impl_policy: fast", "impl_policy must be one of autotune"),
    ("model_args: {x: '" + "y" * 10_000 + "'}\nepochs: [" + "1," * 5000 + "]",
     "epochs must be int"),
])
def test_values_that_parse_but_are_wrong_are_refused(tmp_path, text, expected):
    from lkca.train.config import build_config

    (tmp_path / "c.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=expected) as err:
        build_config(tmp_path / "c.yaml")
    assert len(str(err.value)) < 400


@pytest.mark.parametrize("text, expected", [
    ("lr: .nan", "lr must be a finite number"), ("grad_clip: -1", "grad_clip must be positive"),
    ("stop_after_iters: -1", "stop_after_iters must be positive"),
    ("impl_policy: fast", "impl_policy must be one of"),
])
def test_segmentation_values_that_parse_but_are_wrong_are_refused(tmp_path, text, expected):
    from lkca.seg.config import build_seg_config

    (tmp_path / "c.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=expected):
        build_seg_config(tmp_path / "c.yaml")
