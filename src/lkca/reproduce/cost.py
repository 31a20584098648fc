"""What a reproduction costs: training images per run and projected device-hours.

Classification: an epoch is ``epoch_passes`` passes over the training set (SPT's repeated-
augmentation epoch, docs/recipe.md; 1 where the config has no such key), drawn in batches with
the last partial batch dropped, so a run trains ``epochs x floor(int(passes x N) / batch) x batch``
images (``max_steps_per_epoch`` caps the steps). Segmentation: ``iters x batch_size`` crops.

Hours are projected from a throughput: the images per second one device sustains with all the
runs it holds. Where finished runs of a config exist, their measured speed (``summary.json``)
(images over wall time) is used for that config; otherwise ``--images-per-s`` or the stated
figure below, projected to each config's own model by its MACs (:func:`stated_speed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Images of each data set as distributed (docs/datasets.md; digits: lkca's fixed split;
# Tiny-ImageNet's test split is its labelled val folder; ADE20K: training / validation).
TRAIN_IMAGES = {"digits": 1437, "cifar10": 50000, "cifar100": 50000, "svhn": 73257,
                "tinyimagenet": 100000, "ade20k": 20210}
TEST_IMAGES = {"digits": 360, "cifar10": 10000, "cifar100": 10000, "svhn": 26032,
               "tinyimagenet": 10000, "ade20k": 2000}

# The stated throughput (not measured: no paper-table run has been timed with lkca on a GPU).
# The paper trained on one RTX 2080 Ti (section 4.1), 13.4 TFLOP/s fp32 peak; we assume a quarter
# of it is sustained by a small model in eager PyTorch, and a training step costs 3 x 2 x MACs
# per image (forward, and a backward of twice the forward). The MACs are the paper's "Flops" of
# its middle rows: LKCA-B 170.81M (Table 1), LKCA-S + UperNet 65.94G (Table 7). A measured
# figure replaces these once the GPU acceptance script has run (docs/reproduce.md).
SUSTAINED_FLOPS = 13.4e12 / 4
REFERENCE_MACS = {"cls": 170.81e6, "seg": 65.94e9}
# The models of those rows, as configs resolve them (configs/cls/cifar10/vit_lkca_2p7m.yaml,
# configs/seg/ade20k/upernet_lkca_s_seg_20k.yaml): another model's stated figure is the
# reference's scaled by their MACs per image, both counted by lkca.profile
# (lkca.reproduce.run_model.forward_macs).
REFERENCE_MODELS: dict[str, dict[str, Any]] = {
    "cls": {"model": "vit_lkca_2p7m", "dataset": "cifar10", "model_args": {}},
    "seg": {"backbone": "lkca_s_seg", "head": "upernet", "num_classes": 150, "crop_size": 512,
            "model_args": {}}}


def stated_images_per_s(task: str) -> float:
    """The stated images/s of one device for ``task`` ("cls": ~3,270; "seg": ~8.5)."""
    return SUSTAINED_FLOPS / (3 * 2 * REFERENCE_MACS[task])


def run_length(task: str, cfg: dict[str, Any]) -> tuple[int, int]:
    """(optimiser steps, training images) of a whole run of the resolved config ``cfg``."""
    if task == "seg":
        return int(cfg["iters"]), int(cfg["iters"]) * int(cfg["batch_size"])
    n = TRAIN_IMAGES.get(cfg["dataset"])
    if n is None:
        raise KeyError(f"no training-set size for {cfg['dataset']!r}")
    passes = float(cfg.get("epoch_passes") or 1)
    batch = int(cfg["batch_size"])
    per_epoch = int(passes * n) // batch  # as lkca.data.device_loader.DeviceLoader counts it
    if cfg.get("max_steps_per_epoch"):
        per_epoch = min(per_epoch, int(cfg["max_steps_per_epoch"]))
    steps = int(cfg["epochs"]) * per_epoch
    return steps, steps * batch


@dataclass(frozen=True)
class Speed:
    """Images/s of one device and where the figure comes from ("stated", "--images-per-s" or
    "measured (n runs)")."""

    images_per_s: float
    source: str


def stated_speed(task: str, macs: int, reference_macs: int) -> Speed:
    """The stated throughput projected to a model of ``macs`` MACs per image: the reference
    model's (:func:`stated_images_per_s`, ``reference_macs`` by the same count) times
    ``reference_macs / macs``, as a training step's cost is proportional to its MACs."""
    return Speed(stated_images_per_s(task) * reference_macs / max(macs, 1),
                 f"stated, {macs / 1e6:,.1f}M MACs")


def measured_speed(finished: list[tuple[int, dict[str, Any], int]]) -> Speed | None:
    """The mean device throughput of finished runs of one config, None without any.

    Each run is given as (its training images, its summary.json, how many runs shared its
    device); its throughput is images / ``wall_s`` (the whole run: evaluation and start-up
    included, summed over resumed attempts) times the runs sharing the device.
    """
    speeds = [images / float(summary["wall_s"]) * max(shared, 1)
              for images, summary, shared in finished
              if isinstance(summary.get("wall_s"), (int, float)) and summary["wall_s"] > 0]
    if not speeds:
        return None
    return Speed(sum(speeds) / len(speeds), f"measured ({len(speeds)} run{'s' * (len(speeds) > 1)})")


def hours(images: float, speed: Speed) -> float:
    """Device-hours to train ``images`` at ``speed``."""
    return images / speed.images_per_s / 3600
