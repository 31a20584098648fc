"""One metadata record for checkpoints and pretrained folders: what rebuilds the model and what
running it on new images needs; written, read back by ``from_pretrained`` (``pretrained_cfg``),
and the files of lkca 0.1.0 (written here byte for byte as 0.1.0 wrote them) still load."""

import json

import pytest
import torch
from safetensors.torch import save_file

import lkca
from lkca.builder import build_model
from lkca.checkpoint.metadata import SCHEMA_VERSION, classifier_record, pretrained_cfg
from lkca.cli import main
from lkca.data import dataset_info
from lkca.errors import CheckpointError
from lkca.models.registry import legacy_model
from lkca.pretrained import load_trained, upgrade_record

TINY = {"depth": 2, "dim": 32, "num_heads": 2}
SEG_TINY = {"img_size": 32, "depth": 4, "dim": 16, "num_heads": 2}


def _same_outputs(a, b, shape=(2, 3, 32, 32)):
    x = torch.randn(*shape)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))


def test_new_classifier_record_round_trips_as_pretrained_cfg(tmp_path):
    model = lkca.create_model("vit_lkca_500k", num_classes=7, **TINY)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {"schema_version": SCHEMA_VERSION, "task": "classification",
                      "lkca_version": lkca.__version__, "model": "vit_lkca_500k",
                      "model_args": TINY, "num_classes": 7, "img_size": 32, "in_chans": 3,
                      "mean": None, "std": None, "dataset": None, "class_names": None}
    loaded = lkca.from_pretrained(tmp_path / "model.safetensors")  # the weights' copy of it
    assert loaded.pretrained_cfg == config
    assert pretrained_cfg(loaded) == config and upgrade_record(config) == config
    _same_outputs(model, loaded)


def test_a_trained_model_records_its_input_pipeline(tmp_path):
    from lkca.train.config import TrainConfig
    from lkca.train.engine import train

    train(TrainConfig(model="vit_lkca_500k", model_args=TINY, dataset="digits", epochs=1,
                      warmup_epochs=0, batch_size=32, max_steps_per_epoch=1, autoaugment="none",
                      out=str(tmp_path / "run"), progress=False, device="cpu"))
    cfg = lkca.from_pretrained(tmp_path / "run").pretrained_cfg
    digits = dataset_info("digits")
    assert (cfg["img_size"], cfg["in_chans"], cfg["num_classes"]) == (8, 3, 10)
    assert (cfg["mean"], cfg["std"]) == (list(digits.mean), list(digits.std))
    assert cfg["dataset"] == "digits" and cfg["class_names"] == [str(d) for d in range(10)]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["meta"] == cfg  # the same record in every file of the run


def test_segmentor_record_round_trips(tmp_path):
    from lkca.seg.config import SegConfig
    from lkca.seg.engine import build_segmentor, seg_meta

    seg = lkca.create_segmentor("lkca_s_seg", "fpn", num_classes=5, head_channels=8, **SEG_TINY)
    seg.save_pretrained(tmp_path / "p")
    assert lkca.from_pretrained(tmp_path / "p").pretrained_cfg == seg.pretrained_cfg
    meta = seg_meta(SegConfig(crop_size=32, model_args={**SEG_TINY, "head_channels": 8}))
    assert (meta["crop_size"], meta["slide_stride"], meta["img_scale"]) == (32, 21, [2048, 512])
    assert meta["mean"] == [0.485, 0.456, 0.406] and meta["std"] == [0.229, 0.224, 0.225]
    trained = build_segmentor(meta)
    lkca.save_pretrained(trained, tmp_path / "t")
    model, record = load_trained(tmp_path / "t", task="seg")
    assert record == meta
    _same_outputs(trained, model, (1, 3, 32, 32))


# --- files of lkca 0.1.0 ------------------------------------------------------------------------


def _write_v1_folder(folder, config, model):
    """config.json and model.safetensors exactly as lkca 0.1.0's save_pretrained wrote them."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {**config, "model_args": config.get("overrides", {})}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"lkca": json.dumps(meta)})


def _v1_model(old):
    """A model of the architecture a 0.1.0 record stands for (what lkca builds for it today)."""
    torch.manual_seed(0)
    return build_model(upgrade_record(old))


def test_v1_pretrained_folder_loads(tmp_path):
    config = {"format": "lkca-pretrained", "task": "classification", "model": "vit_lkca_500k",
              "num_classes": 10, "img_size": 32, "overrides": TINY, "lkca_version": "0.1.0"}
    model = _v1_model(config)
    _write_v1_folder(tmp_path / "p", config, model)
    loaded = lkca.from_pretrained(tmp_path / "p")
    _same_outputs(model, loaded)
    cfg = loaded.pretrained_cfg
    # 0.1.0's vit_lkca_500k: today's name with 0.1.0's shape, block, init and drop path
    assert cfg["schema_version"] == SCHEMA_VERSION and cfg["model"] == "vit_lkca_500k"
    assert cfg["model_args"] == legacy_model("vit_lkca_500k", TINY)[1]
    assert "overrides" not in cfg and "format" not in cfg and cfg["lkca_version"] == "0.1.0"
    assert cfg["mean"] is None and cfg["in_chans"] == 3  # no data set named: unknown
    _same_outputs(model, lkca.from_pretrained(tmp_path / "p" / "model.safetensors"))


def test_v1_training_checkpoints_load_with_their_data_set_filled_in(tmp_path, capsys):
    meta = {"model": "vit_lkca_500k", "num_classes": 10, "img_size": 8, "model_args": TINY,
            "dataset": "digits"}
    model = _v1_model(meta)
    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(ckpt / "last.safetensors"), metadata={"lkca": json.dumps(meta)})
    torch.save({"epoch": 1, "step": 0, "meta": meta, "model": model.state_dict()}, ckpt / "last.pt")
    for path in (ckpt / "last.safetensors", ckpt / "last.pt", tmp_path / "run"):
        loaded, record = load_trained(path, task="classification")
        _same_outputs(model, loaded, (2, 3, 8, 8))
        assert record["task"] == "classification" and record["dataset"] == "digits"
        assert record["mean"] == list(dataset_info("digits").mean)
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert "vit_lkca_500k on digits test: top-1" in capsys.readouterr().out


def test_v1_segmentation_checkpoint_and_folder_load(tmp_path):
    meta = {"task": "seg", "backbone": "lkca_s_seg", "head": "fpn", "num_classes": 5,
            "model_args": {"head_channels": 8, **SEG_TINY}, "crop_size": 32,
            "img_scale": [64, 32], "slide_stride": 16}
    model = _v1_model(meta)
    path = tmp_path / "last.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"lkca": json.dumps(meta)})
    loaded, record = load_trained(path, task="seg")
    _same_outputs(model, loaded, (1, 3, 32, 32))
    assert (record["crop_size"], record["img_scale"], record["slide_stride"]) == (32, [64, 32], 16)
    assert record["dataset"] == "ade20k" and record["mean"] == [0.485, 0.456, 0.406]
    config = {"format": "lkca-pretrained", "task": "seg", "backbone": "lkca_s_seg", "head": "fpn",
              "num_classes": 5, "overrides": {"head_channels": 8, **SEG_TINY},
              "lkca_version": "0.1.0"}
    _write_v1_folder(tmp_path / "p", config, model)
    _same_outputs(model, lkca.from_pretrained(tmp_path / "p"), (1, 3, 32, 32))


def test_v1_names_go_through_the_registry_legacy_mapping(monkeypatch):
    calls = []

    def legacy_model(name, overrides, written_by=None):
        calls.append((name, overrides, written_by))
        return "vit_lkca_500k", {**overrides, "mixers": "attn"}

    monkeypatch.setattr(lkca.pretrained, "legacy_model", legacy_model)
    old = {"model": "vit_lkca_500k", "num_classes": 10, "img_size": 32, "model_args": TINY}
    assert upgrade_record(old)["model_args"] == {**TINY, "mixers": "attn"}
    assert calls == [("vit_lkca_500k", TINY, None)]  # no version recorded: none passed on
    new = classifier_record("vit_lkca_500k", TINY, 10, 32)
    assert upgrade_record(new) == new and len(calls) == 1  # current records are not mapped


def test_a_record_from_a_newer_lkca_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="schema 99, newer than this lkca's"):
        upgrade_record({"schema_version": 99}, "x")
