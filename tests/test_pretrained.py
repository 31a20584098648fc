"""save_pretrained / from_pretrained: round trips, refusals, the export at the end of `lkca train`."""

import json
import socket

import pytest
import torch

import lkca
from lkca.errors import CheckpointError
from lkca.models.vit import VisionTransformer, ViTConfig
from lkca.train.config import TrainConfig
from lkca.train.engine import train

TINY = {"depth": 2, "dim": 32, "num_heads": 2}


def _same_outputs(a, b, shape=(2, 3, 32, 32)):
    x = torch.randn(*shape)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))


def test_registered_model_round_trip_writes_name_and_model_args(tmp_path):
    model = lkca.create_model("vit_lkca_500k", num_classes=7, **TINY)
    assert model.save_pretrained(tmp_path / "p") == tmp_path / "p"
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    assert {k: config[k] for k in ("schema_version", "task", "model", "num_classes", "img_size",
                                   "model_args", "in_chans")} == {
        "schema_version": 2, "task": "classification", "model": "vit_lkca_500k",
        "num_classes": 7, "img_size": 32, "model_args": TINY, "in_chans": 3}
    loaded = lkca.from_pretrained(tmp_path / "p")
    assert isinstance(loaded, VisionTransformer) and not loaded.training
    _same_outputs(model, loaded)
    # the weights file alone rebuilds the model from its metadata, and so does config.json's path
    _same_outputs(model, lkca.from_pretrained(tmp_path / "p" / "model.safetensors"))
    _same_outputs(model, lkca.from_pretrained(tmp_path / "p" / "config.json"))


def test_directly_built_vit_and_non_square_image_round_trip(tmp_path):
    model = VisionTransformer(ViTConfig(img_size=(32, 48), mixers="LA", **TINY, kernel_size=5))
    lkca.save_pretrained(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] is None and config["img_size"] == [32, 48]
    loaded = lkca.from_pretrained(tmp_path)
    assert loaded.cfg == model.cfg
    _same_outputs(model, loaded, (1, 3, 32, 48))


def test_segmentor_round_trip(tmp_path):
    seg = lkca.create_segmentor("lkca_s_seg", "fpn", num_classes=5, head_channels=8, img_size=64,
                                **{**TINY, "depth": 4})
    seg.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["task"] == "seg"
    _same_outputs(seg, lkca.from_pretrained(tmp_path), (1, 3, 64, 64))


def test_config_that_does_not_fit_the_weights_is_refused_listing_keys(tmp_path):
    lkca.create_model("vit_lkca_500k", **TINY).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model_args"].update(depth=3, dim=48)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as err:
        lkca.from_pretrained(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "missing blocks.2." in msg and "shape mismatch" in msg
    assert "blocks.0.norm1.weight (32,) vs (48,)" in msg


@pytest.mark.parametrize("damage, needle", [
    (lambda d: (d / "config.json").unlink(), "config.json does not exist"),
    (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "config.json").write_text('{"model": "vit_1m"}'), "lacks num_classes, img_size"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\0" * 20), "corrupt or truncated"),
])
def test_damaged_folders_are_one_line_errors(tmp_path, damage, needle):
    lkca.create_model("vit_lkca_500k", **TINY).save_pretrained(tmp_path)
    damage(tmp_path)
    with pytest.raises(CheckpointError, match=needle) as err:
        lkca.from_pretrained(tmp_path)
    assert "\n" not in str(err.value)


def test_loading_never_touches_the_network(tmp_path, monkeypatch):
    lkca.create_model("vit_lkca_500k", **TINY).save_pretrained(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("from_pretrained opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    lkca.from_pretrained(tmp_path)


def test_train_exports_the_best_model_to_pretrained(tmp_path):
    cfg = TrainConfig(model="vit_lkca_500k", model_args=TINY, dataset="digits", epochs=1,
                      warmup_epochs=1, batch_size=32, max_steps_per_epoch=2, autoaugment="none",
                      out=str(tmp_path / "run"), progress=False, device="cpu")
    train(cfg)
    run = tmp_path / "run"
    config = json.loads((run / "pretrained" / "config.json").read_text())
    assert config["model"] == "vit_lkca_500k" and config["model_args"] == TINY
    assert config["dataset"] == "digits"
    best = lkca.from_pretrained(run / "checkpoints" / "best.safetensors")
    _same_outputs(best, lkca.from_pretrained(run))  # a run folder means its best model
    _same_outputs(best, lkca.from_pretrained(run / "pretrained"))  # exported there
    last = lkca.from_pretrained(run / "checkpoints" / "last.safetensors")
    _same_outputs(last, lkca.from_pretrained(run / "checkpoints" / "last.pt"))  # training state


@pytest.mark.parametrize("key, value, expected", [
    ("num_classes", 10**12, "invalid num_classes"), ("num_classes", float("nan"), "non-finite number nan"),
    ("img_size", "big", "invalid img_size"), ("model", ["vit"], "invalid model"),
    ("model_args", {"depth": 10**12}, "invalid model_args.depth"),
    ("model_args", {"depth": float("nan")}, "non-finite number nan"),
])
def test_a_damaged_config_json_is_refused_in_one_line(tmp_path, key, value, expected):
    import json

    import lkca
    from lkca.errors import CheckpointError

    folder = tmp_path / "p"
    lkca.save_pretrained(lkca.create_model("vit_lkca_500k", img_size=8, num_classes=10), folder)
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**record, key: value}))
    with pytest.raises(CheckpointError, match=expected) as err:
        lkca.from_pretrained(folder)
    assert "\n" not in str(err.value)


def test_a_segmentor_record_names_its_neck_and_one_without_it_was_deconv(tmp_path):
    """Records name the ViT backbone's neck since bilinear became the default; a record that
    leaves it out was written while deconvolution was, and still loads as that."""
    import lkca
    from lkca.pretrained import upgrade_record

    small = dict(num_classes=8, head_channels=8, img_size=32, depth=4, dim=16, num_heads=2)
    assert lkca.create_segmentor("lkca_s_seg", "fpn", **small).pretrained_cfg["model_args"][
        "neck_resample"] == "bilinear"
    old = lkca.create_segmentor("lkca_s_seg", "fpn", **small, neck_resample="deconv")
    old.save_pretrained(tmp_path / "p")
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    del config["model_args"]["neck_resample"]  # as written before bilinear was the default
    (tmp_path / "p" / "config.json").write_text(json.dumps(config))
    assert upgrade_record(config)["model_args"]["neck_resample"] == "deconv"
    loaded = lkca.from_pretrained(tmp_path / "p" / "config.json")
    assert loaded.neck.resample == "deconv"
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                 old.state_dict().values()))
    resnet = {**config, "backbone": "resnet50_seg", "model_args": {}}  # no neck: nothing added
    assert upgrade_record(resnet)["model_args"] == {}
