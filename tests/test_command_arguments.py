"""Every bad value a command is given ends in one line on stderr naming the problem and the fix,
exit code 2, nothing created and every file as it was: device names, model_args, sizes past their
bound, outputs over inputs, data a checkpoint cannot take, export arguments."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from tiny_train import TINY_TRAIN_YAML, assert_refused

import lkca
from lkca.checkpoint.files import save_weights
from lkca.checkpoint.metadata import classifier_record

TINY = {"depth": 1, "dim": 16, "num_heads": 2}


@pytest.fixture
def tiny(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TRAIN_YAML + "epochs: 1\nmax_steps_per_epoch: 1\nprogress: false\n")
    return ["train", "--config", str(cfg)]


@pytest.fixture
def pretrained(tmp_path):
    """A 10-class 8x8 classifier as a pretrained folder (the digits demo's input)."""
    folder = tmp_path / "p"
    lkca.create_model("vit_lkca_500k", img_size=8, **TINY).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("name", ["gpu", "foo", "meta", "mps", "xpu", "cuda:x"])
def test_a_device_name_that_is_no_device_is_one_line(tiny, tmp_path, capsys, name):
    assert_refused(capsys, [*tiny, "--device", name], "is not a device lkca runs on; use one of "
                   "auto, cpu", tmp_path)


def test_eval_and_erf_devices(pretrained, tmp_path, capsys):
    assert_refused(capsys, ["eval", "--checkpoint", str(pretrained), "--device", "foo"],
                   "--device 'foo' is not a device lkca runs on", tmp_path)
    assert_refused(capsys, ["erf", "--model", "vit_lkca_500k", "--device", "gpu"],
                   "--device 'gpu' is not a device lkca runs on", tmp_path)
    if not torch.cuda.is_available():
        assert_refused(capsys, ["eval", "--checkpoint", str(pretrained), "--device", "cuda"],
                       "no CUDA GPU is visible; use one of auto, cpu", tmp_path)


@pytest.mark.parametrize("value, expected", [
    ("model_args.img_size=16", "model_args.img_size is set by lkca train from the data set's "
                               "image size"),
    ("model_args.num_classes=5", "model_args.num_classes is set by lkca train"),
    ("model_args.drop_path_rate=0.1", "model_args.drop_path_rate is set by the drop_path field; "
                                      "set drop_path: 0.1 instead"),
    ("model_args.dim=abc", "model_args.dim must be int, got 'abc' (str)"),
    ("model_args.dim=null", "model_args.dim must be int, got None"),
    ("model_args.dim=1.5", "model_args.dim must be int, got 1.5 (float)"),
    ("model_args.mixers=[1,2]", "model_args.mixers must be str, got [1, 2] (list)"),
    ("model_args.mixers=5", "model_args.mixers must be str, got 5 (int)"),
    ("model_args.mlp_ratio=-1", "mlp_ratio must be > 0"),
    ("model_args.mlp_ratio=.nan", "model_args.mlp_ratio must be a finite number"),
    ("model_args.dpeth=3", "unknown key model_args.dpeth; did you mean 'depth'?"),
    ("model_args.depth=100000", "model_args.depth 100000 is over the 1000 blocks lkca builds"),
    ("model_args.depth=900", None),  # under the block bound: the parameters are (dim 1000)
    ("model_args.dim=40000", "parameters, over the 1,000,000,000 lkca builds"),
    ("seed=18446744073709551616", "seed must be an integer of 64 bits"),
])
def test_model_args_and_numbers_are_checked_before_anything_is_built(tiny, tmp_path, capsys,
                                                                      value, expected):
    sets = [value] if expected else [value, "model_args.dim=1000", "model_args.num_heads=8"]
    assert_refused(capsys, [*tiny, "--set", *sets, "--out", str(tmp_path / "run")],
                   expected or "parameters, over the 1,000,000,000 lkca builds", tmp_path)


def test_sizes_past_their_bound_are_one_line(tmp_path, capsys):
    assert_refused(capsys, ["kernels", "--model", "vit_lkca_500k", "--img-size", "100000"],
                   "--img-size must be an image side from 1 to 4096 pixels", tmp_path)
    assert_refused(capsys, ["profile", "--model", "vit_lkca_500k", "--img-size", "1000000"],
                   "--img-size must be an image side from 1 to 4096 pixels", tmp_path)
    assert_refused(capsys, ["seg", "train", "--crop-size", "100000000", "--data-dir",
                            str(tmp_path)], "crop_size must be an image side from 1 to 4096",
                   tmp_path)


def _digits_run(folder):
    """A run directory of a 10-class 8x8 model (no training: its weights as saved)."""
    model = lkca.create_model("vit_lkca_500k", img_size=8, **TINY)
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(TINY_TRAIN_YAML)
    (folder / "metrics.jsonl").write_text('{"epoch": 1, "test_top1": 50.0, "train_loss": 1.0, '
                                          '"test_loss": 1.0, "lr": 0.001}\n')
    meta = classifier_record("vit_lkca_500k", TINY, 10, 8, in_chans=3, dataset="digits")
    save_weights(folder / "checkpoints" / "last.safetensors", model, meta)
    (folder / "checkpoints" / "last.pt").write_bytes(b"training state")
    return folder


def test_no_command_writes_over_its_inputs_or_a_runs_files(pretrained, tmp_path, capsys):
    run = _digits_run(tmp_path / "runA")
    assert_refused(capsys, ["plot", "--out", str(run / "checkpoints" / "last.pt"), str(run)],
                   "last.pt is a file of", tmp_path)
    assert_refused(capsys, ["plot", "--out", str(run / "metrics.jsonl"), str(run)],
                   "metrics.jsonl", tmp_path)
    assert_refused(capsys, ["export", "--checkpoint", str(pretrained), "--out",
                            str(pretrained / "config.json")], "which this command reads",
                   tmp_path)
    assert_refused(capsys, ["kernels", "--checkpoint", str(pretrained), "--out",
                            str(pretrained / "config.json")], "which this command reads",
                   tmp_path)
    assert_refused(capsys, ["kernels", "--checkpoint", str(run / "checkpoints" / "last.safetensors"),
                            "--out", str(run / "checkpoints" / "last.safetensors")],
                   "is the file this command reads", tmp_path)
    assert_refused(capsys, ["export", "--checkpoint", str(pretrained), "--out", str(tmp_path)],
                   "is a folder; name the file to write", tmp_path)


def _cifar(root, labels=(1, 2), test_images: int = 2):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = test_images if name == "test_batch" else len(labels)
        data = np.zeros((n, 3072), dtype=np.uint8)
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": list(labels)[:n]}))
    return root


def test_an_empty_test_split_is_refused_before_training(tiny, tmp_path, capsys,
                                                        tmp_path_factory):
    # the data elsewhere: loading writes the data set's own decoded cache beside its files
    data = _cifar(tmp_path_factory.mktemp("data"), test_images=0)
    assert_refused(capsys, [*tiny, "--dataset", "cifar10", "--data-dir", str(data), "--out",
                            str(tmp_path / "run")], "the test split of cifar10", tmp_path)


def test_eval_refuses_data_the_checkpoint_cannot_take(pretrained, tmp_path, capsys,
                                                      tmp_path_factory):
    data = _cifar(tmp_path_factory.mktemp("data"))
    assert_refused(capsys, ["eval", "--checkpoint", str(pretrained), "--dataset", "cifar10",
                            "--data-dir", str(data), "--device", "cpu"],
                   "the checkpoint's model takes 8x8 images with 3 channels, cifar10's test "
                   "images are 32x32", tmp_path)


def test_eval_refuses_test_labels_past_the_checkpoints_classes(tmp_path, capsys,
                                                               tmp_path_factory):
    """A 2-class 32x32 checkpoint on CIFAR-10 test labels up to 5: one line, not an IndexError."""
    folder = tmp_path / "two"
    lkca.create_model("vit_lkca_500k", img_size=32, num_classes=2, **TINY).save_pretrained(folder)
    data = _cifar(tmp_path_factory.mktemp("data"), labels=(1, 5))
    assert_refused(capsys, ["eval", "--checkpoint", str(folder), "--dataset", "cifar10",
                            "--data-dir", str(data), "--device", "cpu"],
                   "cifar10's test labels go up to 5, the checkpoint's model has 2 classes",
                   tmp_path)


def test_an_empty_svhn_test_split_is_refused_before_training(tiny, tmp_path, capsys,
                                                             tmp_path_factory):
    scipy_io = pytest.importorskip("scipy.io")
    data = tmp_path_factory.mktemp("svhn")
    for name, n in (("train_32x32.mat", 2), ("test_32x32.mat", 0)):
        scipy_io.savemat(data / name, {"X": np.zeros((32, 32, 3, n), np.uint8),
                                       "y": np.ones((n, 1), np.uint8)})
    assert_refused(capsys, [*tiny, "--dataset", "svhn", "--data-dir", str(data), "--out",
                            str(tmp_path / "run")], "the test split of svhn", tmp_path)


def test_export_arguments_are_one_line(pretrained, tmp_path, capsys):
    pytest.importorskip("onnx")
    argv = ["export", "--checkpoint", str(pretrained), "--out", str(tmp_path / "m.onnx")]
    assert_refused(capsys, [*argv, "--img-size", "-8"], "--img-size must be an image side",
                   tmp_path)
    for opset in ("99999", "1"):
        assert_refused(capsys, [*argv, "--opset", opset], "--opset must be from 18 to",
                       tmp_path)
