"""`lkca seg train / eval / predict` on a tiny synthetic ADE20K-format fixture: the loss falls, the
run writes its files, resume is exact (stop_after_iters and SIGTERM), whole and slide evaluation,
the prediction picture, the schedule, and every config under configs/seg."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from lkca.checkpoint.files import read_weights
from lkca.cli import main
from lkca.errors import ConfigError
from lkca.seg import engine
from lkca.seg.config import SegConfig, build_seg_config
from lkca.seg.optim import warmup_poly
from lkca.seg.predict import palette

ROOT = Path(__file__).resolve().parents[2]
SEG_CONFIGS = ROOT / "configs" / "seg" / "ade20k"
# A CPU-cheap LKCA-S + UperNet (with its auxiliary head): 4 blocks of width 32, 64x64 crops.
TINY_YAML = f"""base: {SEG_CONFIGS / 'base.yaml'}
backbone: lkca_s_seg
head: upernet
model_args: {{depth: 4, dim: 32, num_heads: 2, head_channels: 16}}
crop_size: 64
img_scale: [128, 64]
batch_size: 2
lr: 1.0e-2
warmup_iters: 2
slide_stride: 32
device: cpu
progress: false
"""
COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [220, 220, 60]])


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids thread hand-offs that dominate on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scene(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four classes (raw labels 1..4) in rectangles whose colour gives the class away; a 0 strip."""
    rng = np.random.default_rng(seed)
    label = np.ones((h, w), np.uint8)
    label[:, w // 2 :] = 2
    label[h // 2 :, int(rng.integers(w // 4, w // 2)) :] = 3
    label[: h // 3, : int(rng.integers(8, w // 3))] = 4
    label[:2] = 0  # "other": ignored after reduce-zero-label
    image = COLOURS[np.maximum(label, 1) - 1] + rng.integers(-20, 20, (h, w, 3))
    return image.clip(0, 255).astype(np.uint8), label


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, write_pair) -> Path:
    base = tmp_path_factory.mktemp("ade")
    root = base / "ADEChallengeData2016"
    for i in range(4):
        image, label = _scene(48, 64, i)
        write_pair(root, "training", f"ADE_train_{i:08d}", (48, 64), label=label, image=image)
    for i, size in enumerate(((40, 56), (48, 48))):
        image, label = _scene(*size, 10 + i)
        write_pair(root, "validation", f"ADE_val_{i:08d}", size, label=label, image=image)
    return base


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(TINY_YAML)
    return path


def _train(config: Path, data_dir: Path, out: Path, *extra: str) -> int:
    return main(["seg", "train", "--config", str(config), "--data-dir", str(data_dir), "--iters",
                 "16", "--eval-interval", "8", "--out", str(out), "--no-progress", *extra])


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(config: Path, data_dir: Path, tmp_path_factory) -> Path:
    """An uninterrupted 16-iteration run, evaluated at iters 8 and 16."""
    out = tmp_path_factory.mktemp("runs") / "full"
    assert _train(config, data_dir, out) == 0
    return out


def test_train_lowers_the_loss_and_writes_its_files(run: Path):
    rows = _rows(run)
    assert [r["iter"] for r in rows] == [8, 16]
    assert {"iter", "aAcc", "mIoU", "mAcc", "top10_mIoU", "loss", "lr"} <= set(rows[0])
    assert rows[1]["loss"] < 0.9 * rows[0]["loss"]  # mean of iters 9-16 vs 1-8
    summary = json.loads((run / "summary.json").read_text())
    assert {k: summary[k] for k in ("backbone", "head", "iters")} == {
        "backbone": "lkca_s_seg", "head": "upernet", "iters": 16}
    assert summary["params"] > 0 and summary["mIoU"] == rows[-1]["mIoU"]
    assert summary["precision"] == "fp32"  # the default: MMSegmentation's configs train in fp32
    assert len(summary["per_class_iou"]) == 150 and 0 <= summary["aAcc"] <= 100
    assert (run / "checkpoints" / "last.safetensors").is_file()
    assert (run / "checkpoints" / "last.pt").is_file()
    saved = build_seg_config(run / "config.yaml")
    assert saved.crop_size == 64 and saved.betas == (0.9, 0.999) and saved.iters == 16


def test_resume_is_exact_after_stop_after_iters_and_sigterm(run, config, data_dir, tmp_path,
                                                           monkeypatch, capsys):
    stop_cfg = tmp_path / "stop.yaml"
    stop_cfg.write_text(f"base: {config}\nstop_after_iters: 5\n")
    out = tmp_path / "resumed"
    assert _train(stop_cfg, data_dir, out) == 0  # saves at iter 5 and exits
    assert not (out / "metrics.jsonl").exists()

    seed_of = engine.iter_seed

    def sigterm_in_iter_11(seed, it, rank=0, stream=""):  # the step's seeding: on the main thread
        if it == 10 and stream == "model":
            os.kill(os.getpid(), signal.SIGTERM)
        return seed_of(seed, it, rank, stream)

    monkeypatch.setattr(engine, "iter_seed", sigterm_in_iter_11)
    assert _train(config, data_dir, out, "--resume") == 2
    assert "stopped by SIGTERM at iter 11" in capsys.readouterr().err
    monkeypatch.setattr(engine, "iter_seed", seed_of)
    assert _train(config, data_dir, out, "--resume") == 0

    full, _ = read_weights(run / "checkpoints" / "last.safetensors")
    resumed, _ = read_weights(out / "checkpoints" / "last.safetensors")
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)  # bit-identical weights
    drop = ("iters_per_s",)
    assert ([{k: v for k, v in r.items() if k not in drop} for r in _rows(out)]
            == [{k: v for k, v in r.items() if k not in drop} for r in _rows(run)])


def test_non_finite_loss_and_resume_without_checkpoint_stop_with_one_line(config, data_dir, tmp_path,
                                                                          monkeypatch, capsys):
    out = tmp_path / "nan"
    assert _train(config, data_dir, out, "--resume") == 2
    monkeypatch.setattr(engine._TrainStep, "forward", lambda self, images, labels: {
        "loss": torch.tensor(float("nan"), requires_grad=True)})
    assert _train(config, data_dir, out) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--resume: no checkpoint" in err[0]
    assert "non-finite loss at iter 1" in err[1] and "lower --lr" in err[1]


def _ddp_worker(rank: int, world: int, port: int, config: str, data_dir: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        engine.train(build_seg_config(config, {"data_dir": data_dir, "out": out, "iters": 4,
                                               "eval_interval": 4, "batch_size": 4}))
    finally:  # the run ends the process group it started; this only cleans up after a failure
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_processes_train_and_all_reduce_the_confusion_matrix(config, data_dir, tmp_path, capsys):
    """Under torchrun-style DDP (2 gloo processes, each 2 of the global 4 images and every other
    validation image) the run's final metrics equal a 1-process evaluation of its weights."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, port, str(config), str(data_dir), str(out)), nprocs=2, join=True)
    row = _rows(out)[-1]
    assert row["iter"] == 4
    capsys.readouterr()
    assert main(["seg", "eval", "--checkpoint", str(out), "--data-dir", str(data_dir),
                 "--device", "cpu"]) == 0
    assert f"aAcc {row['aAcc']:.2f}  mIoU {row['mIoU']:.2f}" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_seg_eval_prints_metrics(run, data_dir, mode, capsys):
    assert main(["seg", "eval", "--checkpoint", str(run), "--data-dir", str(data_dir),
                 "--mode", mode, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert all(k in out for k in ("aAcc", "mIoU", "mAcc")) and f"2 images, {mode}" in out
    if mode == "whole":  # the same pipeline as the run's last evaluation
        assert f"mIoU {_rows(run)[-1]['mIoU']:.2f}" in out


def test_seg_eval_of_an_untrained_segmentor_uses_the_default_pipeline(data_dir, tmp_path, capsys):
    """A segmentor saved before any training has no test pipeline in its record: SegConfig's
    defaults for the crop it was built for (64: stride 42) stand in."""
    import lkca

    lkca.create_segmentor("lkca_s_seg", "fpn", num_classes=150, head_channels=8, img_size=64,
                          depth=4, dim=16, num_heads=2).save_pretrained(tmp_path / "p")
    assert main(["seg", "eval", "--checkpoint", str(tmp_path / "p"), "--data-dir", str(data_dir),
                 "--mode", "slide", "--device", "cpu"]) == 0
    assert "(2 images, slide)" in capsys.readouterr().out


def test_seg_predict_writes_image_beside_prediction(run, data_dir, tmp_path):
    image = data_dir / "ADEChallengeData2016" / "images" / "validation" / "ADE_val_00000000.jpg"
    out = tmp_path / "pred.png"
    assert main(["seg", "predict", "--checkpoint", str(run / "checkpoints" / "last.pt"),
                 "--image", str(image), "--out", str(out), "--device", "cpu"]) == 0
    with Image.open(out) as pic:
        assert pic.format == "PNG" and pic.size == (2 * 56, 40)
        right = np.asarray(pic.convert("RGB"))[:, 56:].reshape(-1, 3)
    colours = {tuple(c) for c in palette()}
    assert all(tuple(c) in colours for c in np.unique(right, axis=0))
    assert main(["seg", "predict", "--checkpoint", str(run), "--image",
                 str(tmp_path / "missing.jpg")]) == 2


def test_seg_predict_never_replaces_an_existing_file_beside_the_image(run, data_dir, tmp_path,
                                                                    capsys):
    """ADE20K's full release keeps masks as ``<image>_seg.png`` beside the image: the default
    output is refused when it exists (one line, every file as it was) unless --overwrite."""
    import shutil

    from tests.tiny_train import assert_refused

    folder = tmp_path / "images"
    folder.mkdir()
    image = folder / "ADE_train_00000001.jpg"
    shutil.copy(data_dir / "ADEChallengeData2016" / "images" / "validation" / "ADE_val_00000000.jpg",
                image)
    mask = folder / "ADE_train_00000001_seg.png"
    mask.write_bytes(b"the data set's own mask")
    argv = ["seg", "predict", "--checkpoint", str(run), "--image", str(image), "--device", "cpu"]
    assert_refused(capsys, argv, f"{mask} already exists (the default output beside the image",
                   tmp_path)
    assert main([*argv, "--overwrite"]) == 0
    with Image.open(mask) as pic:
        assert pic.format == "PNG"
    assert sorted(p.name for p in folder.iterdir()) == [image.name, mask.name]  # no temporary


def test_palette_is_deterministic_and_distinct():
    p = palette()
    assert p.shape == (150, 3) and p.dtype == np.uint8
    assert len({tuple(c) for c in p}) == 150 and (p.sum(axis=1) > 0).all()
    assert p[:3].tolist() == [[128, 0, 0], [0, 128, 0], [128, 128, 0]]  # VOC colours 1, 2, 3


def test_warmup_poly_is_mmsegmentation_vit_schedule():
    assert warmup_poly(0, 1500, 20000) == pytest.approx(1e-6)
    assert warmup_poly(750, 1500, 20000) == pytest.approx(1e-6 + (1 - 1e-6) * 0.5)
    assert warmup_poly(1500, 1500, 20000) == 1.0
    assert warmup_poly(1500 + 18500 // 2, 1500, 20000) == pytest.approx(0.5, abs=1e-4)
    assert warmup_poly(20000, 1500, 20000) == 0.0
    assert warmup_poly(10000, 0, 20000, power=0.9, min_ratio=0.1) == pytest.approx(0.1 + 0.9 * 0.5 ** 0.9)


def test_every_seg_config_builds():
    files = sorted(SEG_CONFIGS.glob("*.yaml"))
    rows = [f for f in files if f.name != "base.yaml"]
    # Table 6: 2 x (20k, and per row 2k, 4k, 8k, 16k); Table 7: (2 x 2 + ResNet-50, Swin-S,
    # 2 x PCPVT-S) x (20k, and per row 10k)
    assert len(rows) == 26
    assert build_seg_config(SEG_CONFIGS / "base.yaml") == SegConfig()  # base = the defaults
    for path in rows:
        cfg = build_seg_config(path)
        head, rest = path.stem.split("_", 1)
        assert cfg.head == head and path.stem.endswith(f"_{cfg.iters // 1000}k")
        assert cfg.backbone.split("_")[0] == rest.split("_")[0]
        assert cfg.lr == 6e-5 and cfg.warmup_iters == 1500 and cfg.batch_size == 16
        assert "aAcc" in path.read_text().splitlines()[0]  # the paper's figures
        if cfg.iters == 20000:  # one run, its evaluations the rows (docs/segmentation.md)
            assert cfg.eval_iters == ([2000, 4000, 8000, 16000] if "_b_" in path.stem
                                      else [10000, 20000])
        if "_b_" in path.stem:  # ViT-B / LKCA-B: MMSegmentation's ViT-B stochastic depth
            assert cfg.model_args["drop_path_rate"] == 0.0
        if cfg.backbone in ("vit_s_seg", "lkca_s_seg"):
            assert cfg.model_args["neck_resample"] == "bilinear"


def test_config_errors_are_one_clear_line(tmp_path, data_dir, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("iters: 10\nwarmup_iter: 5\n")
    with pytest.raises(ConfigError, match="did you mean 'warmup_iters'"):
        build_seg_config(bad)
    with pytest.raises(ConfigError, match="betas must be a list of 2 floats"):
        SegConfig(betas=(0.9,))
    with pytest.raises(ConfigError, match="did you mean 'upernet'"):
        SegConfig(head="uppernet")
    with pytest.raises(ConfigError, match="crop_size must be a positive multiple of the patch"):
        SegConfig(crop_size=100)
    with pytest.raises(ConfigError, match="unknown model_args key 'depht'; did you mean 'depth'"):
        SegConfig(model_args={"depht": 4})
    assert main(["seg", "train", "--iters", "1", "--device", "cpu",
                 "--out", str(tmp_path / "run")]) == 2
    assert main(["seg", "eval", "--checkpoint", str(tmp_path / "none.safetensors"),
                 "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--data-dir" in err[0] and "does not exist" in err[1]


def test_profile_prints_segmentor_params_with_table_7(capsys):
    assert main(["profile", "--model", "lkca_s_seg", "--head", "fpn"]) == 0
    out = capsys.readouterr().out
    assert "lkca_s_seg + fpn" in out and "(paper Table 7: 30.18M)" in out and "neck" in out


@pytest.mark.parametrize("side", [20000, 10000])  # PIL's error past 2x its limit, its warning past it
def test_seg_predict_refuses_a_decompression_bomb_from_its_header(tmp_path, side):
    from memory_cap import assert_refused_capped
    from png_headers import write_header_only_png

    import lkca

    lkca.create_segmentor("lkca_s_seg", "fpn", num_classes=150, head_channels=8, img_size=64,
                          depth=4, dim=16, num_heads=2).save_pretrained(tmp_path / "p")
    write_header_only_png(tmp_path / "big.png", side, side)
    assert_refused_capped(["seg", "predict", "--checkpoint", "p", "--image", "big.png", "--out",
                           "pred.png", "--device", "cpu"],
                          "image big.png is too large to decode (", tmp_path)
