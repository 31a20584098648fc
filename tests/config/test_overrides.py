"""``--set key=value``: every config field of ``lkca train`` and ``lkca seg train`` from the
command line, type-checked, unknown keys with the closest suggested, dots into mappings."""

import pytest

from lkca.cli import build_parser, main
from lkca.config import parse_overrides
from lkca.errors import ConfigError
from lkca.seg.config import SegConfig, build_seg_config
from lkca.train.config import build_config


def test_values_are_yaml_and_dots_reach_into_mappings():
    sets = parse_overrides(["lr=3e-3", "model_args.depth=6", "model_args.mixers=LA",
                            "img_scale=[1024, 256]", "grad_clip=null", "progress=false"])
    assert sets == {"lr": 0.003, "model_args": {"depth": 6, "mixers": "LA"},
                    "img_scale": [1024, 256], "grad_clip": None, "progress": False}


@pytest.mark.parametrize("item, match", [
    ("lr", "expected key=value"), ("=3", "expected key=value"), ("a..b=1", "expected key=value"),
    ("mixers=[LA", "not valid YAML"),
])
def test_malformed_items_are_one_line_errors(item, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_overrides([item])
    assert "\n" not in str(err.value)


def test_a_key_cannot_be_both_a_value_and_a_mapping():
    with pytest.raises(ConfigError, match="cannot hold keys"):
        parse_overrides(["model_args=1", "model_args.depth=2"])
    with pytest.raises(ConfigError, match="already holds keys"):
        parse_overrides(["model_args.depth=2", "model_args=1"])


def test_train_config_takes_any_field_and_checks_its_type(tmp_path):
    cfg = build_config(None, sets=parse_overrides(["lr=3e-3", "ema_decay=0.999", "epochs=3",
                                                   "model_args.dim=32"]))
    assert (cfg.lr, cfg.ema_decay, cfg.epochs) == (0.003, 0.999, 3)
    assert cfg.model_args == {"dim": 32}
    config = tmp_path / "c.yaml"
    config.write_text("dataset: digits\nmodel_args:\n  depth: 6\n")
    cfg = build_config(config, sets=parse_overrides(["model_args.dim=32"]))
    assert cfg.model_args == {"depth": 6, "dim": 32}  # merged key by key
    with pytest.raises(ConfigError, match="epochs must be int, got 'ten' \\(str\\)"):
        build_config(None, sets=parse_overrides(["epochs=ten"]))
    with pytest.raises(ConfigError, match="lr must be float, got \\{'x': 1\\} \\(dict\\)"):
        build_config(None, sets=parse_overrides(["lr.x=1"]))


def test_unknown_keys_suggest_the_closest():
    with pytest.raises(ConfigError, match="unknown config key 'wieght_decay'; did you mean "
                                          "'weight_decay'"):
        build_config(None, sets=parse_overrides(["wieght_decay=0.1"]))
    with pytest.raises(ConfigError, match="unknown config key 'slide_strid'; did you mean "
                                          "'slide_stride'"):
        build_seg_config(None, sets=parse_overrides(["slide_strid=42"]))
    with pytest.raises(ConfigError, match="unknown model_args key 'depht'; did you mean 'depth'"):
        build_seg_config(None, sets=parse_overrides(["model_args.depht=4"]))


def test_set_wins_over_flags_and_file_and_null_is_a_value(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("dataset: digits\nepochs: 5\ngrad_clip: 1.0\nlr: 3e-3\n")  # 3e-3: a float
    cfg = build_config(f, {"epochs": 4}, parse_overrides(["epochs=6", "grad_clip=null"]))
    assert (cfg.epochs, cfg.grad_clip, cfg.lr) == (6, None, 0.003)
    assert build_config(f, {"epochs": 4}).epochs == 4  # flags over the file


def test_segmentation_slide_stride_follows_the_crop():
    assert SegConfig().slide_stride == 341  # MMSeg's 341 for 512 crops: 2/3 rounded down
    assert build_seg_config(None, {"crop_size": 64}).slide_stride == 42
    cfg = build_seg_config(None, {"crop_size": 64}, parse_overrides(["slide_stride=32", "lr=3e-3"]))
    assert (cfg.slide_stride, cfg.lr) == (32, 0.003)
    with pytest.raises(ConfigError, match="slide_stride 341 is larger than crop_size 64"):
        build_seg_config(None, {"crop_size": 64}, parse_overrides(["slide_stride=341"]))


def test_the_cli_parses_set_on_train_and_seg_train(tmp_path, capsys):
    args = build_parser().parse_args(["train", "--set", "lr=1e-3", "epochs=2", "--set", "seed=3",
                                      "--epochs", "1"])
    assert args.set == ["lr=1e-3", "epochs=2", "seed=3"] and args.epochs == 1
    assert build_parser().parse_args(["seg", "train", "--set", "slide_stride=42"]).set == [
        "slide_stride=42"]
    assert main(["train", "--set", "wieght_decay=1", "--out", str(tmp_path / "r")]) == 2
    # --crop-size 64 alone is accepted (the stride follows); the run then needs its data
    assert main(["seg", "train", "--crop-size", "64", "--set", "lr=3e-3", "--out",
                 str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "did you mean 'weight_decay'" in err[0] and "--data-dir" in err[1]
