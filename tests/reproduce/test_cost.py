"""The cost projection (stated and measured throughput) and the runs-per-GPU rule."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from reproduce_kit import ROOT, write_digits_table
from torch import nn

from lkca.reproduce import packing
from lkca.reproduce.cost import Speed, hours, measured_speed, stated_images_per_s
from lkca.reproduce.plan import plan_runs
from lkca.reproduce.reproduction import plan, plan_text
from lkca.reproduce.table_spec import load_table_spec


def test_stated_throughput_is_its_documented_arithmetic():
    # a quarter of an RTX 2080 Ti's 13.4 TFLOP/s over 6 x MACs of the reference rows
    assert stated_images_per_s("cls") == pytest.approx(13.4e12 / 4 / (6 * 170.81e6))
    assert round(stated_images_per_s("cls")) == 3269 and round(stated_images_per_s("seg"), 1) == 8.5
    assert hours(3600 * 1000, Speed(1000.0, "x")) == 1.0


def test_measured_speed_is_images_over_wall_time_times_runs_sharing_the_device():
    speed = measured_speed([(1000, {"wall_s": 10.0}, 1), (1000, {"wall_s": 20.0}, 4),
                            (1000, {"top1": 3}, 1)])  # no wall time: not counted
    assert speed == Speed((100.0 + 200.0) / 2, "measured (2 runs)")
    assert measured_speed([]) is None


def test_finished_runs_replace_the_stated_speed_of_their_config(tmp_path):
    spec = write_digits_table(tmp_path / "spec")
    rep = plan(str(spec), tmp_path / "runs", tmp_path)
    run = rep.runs[0]
    run.out.mkdir(parents=True)
    (run.out / "config.yaml").write_text(yaml.safe_dump(run.resolved))  # as lkca train writes it
    (run.out / "metrics.jsonl").write_text(
        "".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)))
    (run.out / "summary.json").write_text(json.dumps({"top1": 50.0, "wall_s": 2.0}))
    text = plan_text(rep)
    assert f"| 1/1 | 12 | {run.images} | {run.images / 2.0:,.1f} (measured (1 run)) | 0.00 |" in text
    assert "(stated, " in text.split("\n")[5]  # the other config: no finished run


def test_each_row_is_projected_from_its_own_models_macs(tmp_path):
    from lkca.reproduce.cost import REFERENCE_MODELS, stated_speed
    from lkca.reproduce.reproduction import stated_speeds
    from lkca.reproduce.run_model import forward_macs

    reference = forward_macs("cls", REFERENCE_MODELS["cls"])
    assert abs(reference / 170.81e6 - 1) < 0.05  # our count of the paper's LKCA-B "Flops"
    # the reference row keeps the stated figure; a model of half its MACs runs twice as fast
    assert stated_speed("cls", reference, reference).images_per_s == stated_images_per_s("cls")
    assert stated_speed("cls", reference // 2, reference).images_per_s == pytest.approx(
        2 * stated_images_per_s("cls"), rel=1e-6)
    rep = plan("1", tmp_path / "runs", ROOT / "configs")
    speeds = stated_speeds(rep.runs)
    by_row = {r.rows[0]: speeds[r.config] for r in rep.runs}
    assert by_row["ViT-LKCA"].images_per_s == pytest.approx(stated_images_per_s("cls"))
    assert by_row["ViT-LKCA"].source == f"stated, {reference / 1e6:,.1f}M MACs"
    small, large = by_row["VIT/0.5M"], by_row["VIT/8M"]
    assert small.images_per_s > 4 * stated_images_per_s("cls") > large.images_per_s * 4
    assert len({s.images_per_s for s in speeds.values()}) == len(rep.runs)  # no two alike
    text = plan_text(rep)
    hours_of = {line.split(" | ")[0].lstrip("| "): line.rsplit(" | ", 1)[1].rstrip(" |")
                for line in text.splitlines() if line.startswith("| V")}
    assert hours_of["VIT/0.5M"] != hours_of["VIT/8M"]
    assert plan_text(rep, 1000.0).count("1,000.0 (--images-per-s)") == len(rep.runs)


def test_saved_activations_of_a_known_model():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    # per image: the first Linear saves its input (10 floats), ReLU its output (20), the second
    # Linear its input (20 -- the same tensor as ReLU's output, counted again)
    assert packing.activation_bytes_per_image(model, (10,)) == 4 * (10 + 20 + 20)


def test_runs_per_gpu_rule():
    gib = 1 << 30
    assert packing.runs_per_gpu(3 * gib, 24 * gib) == 4  # 6 fit in 80% of 24 GiB: capped at 4
    assert packing.runs_per_gpu(8 * gib, 24 * gib) == 2
    assert packing.runs_per_gpu(30 * gib, 24 * gib) == 1  # never below one


def test_run_memory_adds_context_data_optimiser_and_activations(tmp_path):
    table, configs = load_table_spec(write_digits_table(tmp_path))
    run = plan_runs(configs, 1, tmp_path / "runs")[0]
    from lkca.models.registry import create_model

    model = create_model("lkca_digits", num_classes=10, img_size=8, depth=1)
    params = sum(p.numel() for p in model.parameters())
    per_image = packing.activation_bytes_per_image(model, (3, 8, 8))
    data = (1437 + 360) * 3 * 8 * 8
    assert packing.run_memory_bytes(run) == (packing.CONTEXT_BYTES + data + 16 * params
                                            + per_image * run.resolved["batch_size"])
    assert per_image > 0 and torch.get_default_dtype() == torch.float32
