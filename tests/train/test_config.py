"""Config: YAML with a base recipe, unknown keys and bad values rejected, defaults documented."""

from pathlib import Path

import pytest
import yaml

from lkca.errors import ConfigError
from lkca.models.registry import resolve_name
from lkca.train.config import DIGITS_DEFAULTS, TrainConfig, build_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "cls"


def test_base_recipe_file_equals_the_dataclass_defaults():
    base = yaml.safe_load((CONFIGS / "base.yaml").read_text())
    defaults = TrainConfig().to_dict()
    for key, value in base.items():
        assert defaults[key] == value, key


def test_digits_config_file_equals_the_embedded_default():
    assert build_config(CONFIGS / "digits" / "default.yaml") == build_config()
    assert build_config().model == DIGITS_DEFAULTS["model"]


def test_every_config_builds_and_names_a_registered_model():
    files = sorted(CONFIGS.glob("*/*.yaml"))
    assert len(files) >= 4 * 4 + 3 * 8
    for f in files:
        cfg = build_config(f)
        resolve_name(cfg.model)
        assert cfg.dataset == f.parent.name or f.parent.name == "digits"
    paper_rows = {p.stem for p in (CONFIGS / "cifar10").glob("vit_*.yaml")}
    assert len(paper_rows) == 12  # every row of Table 1 (the other files: Table 4 baselines)


def test_unknown_key_suggests_the_closest(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("base: " + str(CONFIGS / "base.yaml") + "\nwieght_decay: 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'wieght_decay'.*'weight_decay'"):
        build_config(f)


@pytest.mark.parametrize(
    "overrides, match",
    [({"epochs": "ten"}, "epochs must be int"), ({"lr": -1.0}, "lr must be > 0"),
     ({"mix_prob": 1.5}, "mix_prob must be in"), ({"batch_size": 0}, "batch_size must be positive"),
     ({"epoch_passes": 0}, "epoch_passes must be > 0"), ({"min_lr": -1e-6}, "min_lr must be >= 0")],
)
def test_bad_values(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_config(None, overrides)


def test_overrides_win_and_ints_become_floats(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(f"base: {CONFIGS / 'base.yaml'}\ndataset: cifar10\nmodel: lkca_t\nlr: 1\n")
    cfg = build_config(f, {"epochs": 3, "model": None})
    assert (cfg.epochs, cfg.model, cfg.lr, cfg.weight_decay) == (3, "lkca_t", 1.0, 0.05)


def test_drop_path_rate_is_set_by_drop_path_not_model_args():
    with pytest.raises(ConfigError, match="set drop_path: 0.2 instead"):
        TrainConfig(model_args={"drop_path_rate": 0.2})


def test_the_digits_demo_is_a_registered_name_without_model_args():
    """A registered name means one architecture: the demo has its own, and --model M on digits
    trains M as registered."""
    from lkca.train.config import DIGITS_DEFAULTS, build_config

    assert "model_args" not in DIGITS_DEFAULTS and build_config(None, {}).model_args == {}
    assert build_config(None, {}).model == "lkca_digits"
    for name in ("crossvit_t", "vit_lkca_500k"):
        cfg = build_config(None, {"model": name})
        assert cfg.model == name and cfg.model_args == {}


@pytest.mark.parametrize("padding", [100000, 3000, 9])
def test_crop_padding_past_the_image_side_is_refused_before_anything_is_created(
        tmp_path, capsys, padding):
    """A padding that would make the augmentation allocate (8 + 2 * padding)^2 per image
    (7.68 TB at 100000): refused in one line under a 6 GiB cap, no run folder created."""
    from memory_cap import assert_refused_capped

    assert_refused_capped(["train", "--epochs", "1", "--device", "cpu", "--out", "run", "--set",
                           f"crop_padding={padding}"],
                          f"crop_padding must be at most the image side (8 for digits), got "
                          f"{padding}", tmp_path)
