"""Every user mistake of docs/errors.md: exit code 2, one line on stderr naming the problem and
the fix, no traceback, and nothing already saved is damaged."""

from __future__ import annotations

import errno
import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_train import TINY_TRAIN_YAML, assert_one_line_error

from lkca import atomic_files
from lkca.checkpoint.files import save_weights
from lkca.cli import main

TINY_YAML = TINY_TRAIN_YAML + "max_steps_per_epoch: 2\n"
TINY = ["--epochs", "1", "--batch-size", "32", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module", autouse=True)
def _tiny_config(tmp_path_factory):
    TINY[:] = TINY[:7] + ["--config", _config(tmp_path_factory.mktemp("cfg"), TINY_YAML)]


def _cifar(root: Path, labels=(1, 2), truncate=False) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data = np.zeros((len(labels), 3072), dtype=np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        raw = pickle.dumps({b"data": data, b"labels": list(labels)})
        (folder / name).write_bytes(raw[: len(raw) // 2] if truncate else raw)
    return root


def _tiny_imagenet(root: Path) -> Path:
    base = root / "tiny-imagenet-200"
    (base / "train" / "n01" / "images").mkdir(parents=True)
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("n01\n")
    (base / "train" / "n01" / "images" / "n01_0.JPEG").write_bytes(b"not a jpeg")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "JPEG")
    (base / "val" / "images" / "val_0.JPEG").write_bytes(buf.getvalue())
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\t0\t0\t1\t1\n")
    return root


SEG_BASE = Path(__file__).resolve().parents[1] / "configs" / "seg" / "ade20k" / "base.yaml"


def _seg_checkpoint(tmp: Path) -> Path:
    """Weights with the metadata `lkca seg train` writes (a tiny segmentor)."""
    from lkca.seg.config import SegConfig
    from lkca.seg.engine import build_segmentor, seg_meta

    tiny = {"depth": 4, "dim": 16, "num_heads": 2, "head_channels": 8}
    meta = seg_meta(SegConfig(crop_size=32, slide_stride=16, model_args=tiny))
    path = tmp / "seg.safetensors"
    save_weights(path, build_segmentor(meta), meta)
    return path


def _evil_archive(tmp: Path) -> Path:
    import tarfile

    path = tmp / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"e"))
    return path


def _config(tmp: Path, text: str) -> str:
    path = tmp / f"c{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"
    path.write_text(text)
    return str(path)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, _tiny_config) -> Path:
    """A finished one-epoch run whose files must survive every later mistake untouched."""
    out = tmp_path_factory.mktemp("saved") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def _cases(tmp: Path, run: Path) -> dict[str, tuple[list[str], str]]:
    other = tmp / "other.safetensors"
    from lkca import create_model

    save_weights(other, create_model("vit_lkca_1m", img_size=8),
                 {"model": "vit_lkca_500k", "num_classes": 10, "img_size": 8, "model_args": {}})
    truncated = tmp / "trunc.safetensors"
    truncated.write_bytes((run / "checkpoints" / "last.safetensors").read_bytes()[:1000])
    blocker = tmp / "a_file"
    blocker.write_text("")
    return {
        "unknown config key": (["train", "--config", _config(tmp, "dataset: digits\nwieght_decay: 1\n")],
                               "did you mean 'weight_decay'"),
        "wrong type": (["train", "--config", _config(tmp, "dataset: digits\nepochs: ten\n")],
                       "epochs must be int"),
        "out-of-range value": (["train", "--config", _config(tmp, "dataset: digits\nmix_prob: 2\n")],
                               "mix_prob must be in [0, 1]"),
        "missing data directory": (["train", "--dataset", "cifar10", "--data-dir",
                                    str(tmp / "nowhere")], "cifar10"),
        "wrong layout": (["train", "--dataset", "svhn", "--data-dir", str(tmp)], "train_32x32.mat"),
        "truncated pickle": (["train", "--dataset", "cifar10", "--data-dir",
                              str(_cifar(tmp / "trunc", truncate=True))], "data_batch_1"),
        "label out of range": (["train", "--dataset", "cifar10", "--data-dir",
                                str(_cifar(tmp / "labels", labels=(1, 12)))], "label"),
        "corrupt image": (["train", "--dataset", "tinyimagenet", "--data-dir",
                           str(_tiny_imagenet(tmp / "tin"))], "n01_0.JPEG"),
        "image size not divisible by patch": (
            ["train", "--config", _config(tmp, "dataset: digits\nmodel_args: {patch_size: 3}\n")],
            "not divisible by the patch size 3"),
        "unknown model": (["train", "--model", "lkca_bb"], "did you mean lkca_b"),
        "checkpoint from another model": (["eval", "--checkpoint", str(other)],
                                          "shape mismatch"),
        "checkpoint truncated": (["eval", "--checkpoint", str(truncated)], "corrupt or truncated"),
        "resume without checkpoint": (["train", *TINY, "--out", str(tmp / "fresh"), "--resume"],
                                      "no checkpoint at"),
        "output directory not writable": (["train", *TINY, "--out", str(blocker / "run")],
                                          "is not writable"),
        "batch larger than the data set": (["train", "--batch-size", "5000", "--out",
                                            str(tmp / "big")], "5000"),
        "seg: unknown config key": (["seg", "train", "--config", _config(
            tmp, f"base: {SEG_BASE}\nitres: 3\n")], "did you mean 'iters'"),
        "seg: missing ADE20K directory": (["seg", "train", "--data-dir", str(tmp / "nowhere"),
                                          "--out", str(tmp / "seg")], "ADEChallengeData2016"),
        "seg: classification checkpoint": (["seg", "eval", "--checkpoint", str(run), "--data-dir",
                                            str(tmp)], "not a segmentation checkpoint"),
        "classification eval: segmentation checkpoint": (
            ["eval", "--checkpoint", str(_seg_checkpoint(tmp))], "is a segmentation checkpoint"),
        "archive member outside the target": (["data", "extract", str(_evil_archive(tmp)), "--to",
                                               str(tmp / "data")], "outside"),
    }


CASES = ["unknown config key", "wrong type", "out-of-range value", "missing data directory",
         "wrong layout", "truncated pickle", "label out of range", "corrupt image",
         "image size not divisible by patch", "unknown model", "checkpoint from another model",
         "checkpoint truncated", "resume without checkpoint", "output directory not writable",
         "batch larger than the data set", "seg: unknown config key", "seg: missing ADE20K directory",
         "seg: classification checkpoint", "classification eval: segmentation checkpoint",
         "archive member outside the target"]


@pytest.mark.parametrize("case", CASES)
def test_user_mistake(case, tmp_path, saved_run, capsys):
    before = _digest(saved_run)
    argv, expected = _cases(tmp_path, saved_run)[case]
    assert_one_line_error(capsys, argv, expected)
    assert _digest(saved_run) == before


def test_disk_full_on_checkpoint_write_keeps_the_previous(tmp_path, saved_run, capsys,
                                                          monkeypatch):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "3", "--out", str(run), "--set",
                 "stop_after_epochs=2"]) == 0
    state = run / "checkpoints" / "last.pt"
    before = state.read_bytes()
    real_fsync = atomic_files.os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_files.os, "fsync", full)
    argv = ["train", *TINY, "--epochs", "3", "--out", str(run), "--resume"]
    assert_one_line_error(capsys, argv, "No space left on device")
    monkeypatch.setattr(atomic_files.os, "fsync", real_fsync)
    assert state.read_bytes() == before
    assert not list((run / "checkpoints").glob(".*.tmp"))  # no temp file left behind


def test_world_size_not_dividing_the_batch(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert_one_line_error(capsys, ["train", *TINY, "--out", str(tmp_path / "r")],
                          "not divisible by the 3 processes")
