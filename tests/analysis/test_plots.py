"""`lkca erf | kernels | plot` on a tiny run: PNGs of the documented pixel size, clear errors."""

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lkca.analysis.plots import kernel_mosaic, read_run
from lkca.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run directory as `lkca train` writes it (docs/design.md): metrics.jsonl of two
    epochs and a checkpoint of a 2-block ViT-LKCA (2 attention heads, 1 kernel per block) on
    digits, saved by the library."""
    import torch

    from lkca import create_model
    from lkca.checkpoint.files import save_weights

    out = tmp_path_factory.mktemp("tiny") / "lkca-run"
    args = {"depth": 2, "dim": 16, "num_heads": 2}
    torch.manual_seed(0)
    model = create_model("vit_lkca_500k", num_classes=10, img_size=8, **args)
    save_weights(out / "checkpoints" / "last.safetensors", model,
                 {**model.pretrained_cfg, "dataset": "digits"})
    rows = [{"epoch": e, "train_loss": 2.3 / e, "test_loss": 2.2 / e, "test_top1": 40.0 * e,
             "lr": 1e-3 / e, "images_per_s": 500.0} for e in (1, 2)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


@pytest.fixture
def seg_run(tmp_path) -> Path:
    out = tmp_path / "seg-run"
    out.mkdir()
    rows = [{"iter": i, "aAcc": 50.0 + i, "mIoU": 10.0 + i, "mAcc": 20.0, "top10_mIoU": 30.0,
             "loss": 3.0 / i, "lr": 1e-4 / i, "iters_per_s": 2.0} for i in (1, 2, 3)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _png(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG that is not one flat colour."""
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
        assert pixels.std() > 0
        return image.size


def _check_error(capsys, argv, expected):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err


def test_plot_curves_of_runs(run, seg_run, tmp_path, capsys):
    other = tmp_path / "copy" / "lkca-run"
    other.mkdir(parents=True)
    (other / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text())
    assert main(["plot", str(run), str(other), "--out", str(tmp_path / "c.png")]) == 0
    assert _png(tmp_path / "c.png") == (1400, 400)  # CURVES_IN 14 x 4 in at 100 dpi
    assert "2 classification runs" in capsys.readouterr().out
    assert main(["plot", str(seg_run), "--out", str(tmp_path / "s.png")]) == 0
    assert _png(tmp_path / "s.png") == (1400, 400)


def test_kernels_of_a_trained_run_and_of_an_init_model(run, tmp_path, capsys):
    assert main(["kernels", "--checkpoint", str(run), "--out", str(tmp_path / "k.png")]) == 0
    # 2 blocks x 1 kernel (vit_lkca_*: one per block): width max(5, 1 * 1 + 2.4) in, height
    # 2 * 1 + 1.2 in, at 100 dpi
    assert _png(tmp_path / "k.png") == (500, 320)
    assert "2 LKCA blocks x 1 head, kernels 15x15" in capsys.readouterr().out
    assert main(["kernels", "--model", "lkca_digits", "--out", str(tmp_path / "i.png")]) == 0
    assert _png(tmp_path / "i.png") == (740, 720)  # 6 blocks x 5 heads


def test_erf_of_trained_and_init_models_side_by_side(run, tmp_path, capsys):
    out = tmp_path / "e.png"
    argv = ["erf", "--checkpoint", str(run), "--with-init", "--model", "vit_500k",
            "--num-images", "8", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    assert _png(out) == (1000, 360)  # 3 maps of 3 in + 1 in colour bar, 3.6 in high
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split() == ["model", "20%", "50%", "90%"]  # a header over the columns
    assert "vit_lkca_500k (lkca-run)" in printed[2] and "vit_lkca_500k (init)" in printed[3]
    assert "vit_500k (init)" in printed[4]
    assert all(line.count("%") == 3 for line in printed[2:5])


def test_erf_table_columns_line_up_with_a_long_label(run, tmp_path, capsys):
    deep = tmp_path / ("a-run-folder-with-a-name-longer-than-the-default-column-" + "x" * 20)
    import shutil

    shutil.copytree(run, deep)
    assert main(["erf", "--checkpoint", str(deep), "--model", "vit_500k", "--num-images", "2",
                 "--device", "cpu", "--out", str(tmp_path / "e.png")]) == 0
    rows = capsys.readouterr().out.splitlines()[1:4]
    ends = {row.index("%") for row in rows[1:]} | {rows[0].index("%")}
    assert len(ends) == 1, rows  # the first percentage column ends at one position in every row


def test_erf_checks_every_model_before_printing(tmp_path, capsys):
    assert main(["erf", "--model", "vit_lkca_500k", "--model", "lkca_bb", "--device", "cpu",
                 "--out", str(tmp_path / "e.png")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "unknown model 'lkca_bb'" in err and err.count("\n") == 1


def test_plot_default_output_and_printed_path(run, tmp_path, capsys, monkeypatch):
    """Runs in different folders: the first run's folder, not their common parent; the path is
    printed as given (relative stays relative, as kernels and erf print theirs)."""
    import shutil

    for name in ("x/a", "y/b"):
        shutil.copytree(run, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(["plot", "x/a", "y/b"]) == 0
    assert (tmp_path / "x" / "a" / "curves.png").is_file() and not (tmp_path / "curves.png").exists()
    assert "wrote x/a/curves.png (" in capsys.readouterr().out


def test_curves_have_whole_epochs_on_the_x_axis(run):
    from lkca.analysis.plots import curves_figure

    fig = curves_figure([read_run(run)])  # 2 epochs: matplotlib's default ticks are 1.25, 1.5 ...
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_default_outputs_go_beside_the_run_or_into_runs(run, tmp_path, capsys):
    """Without --out nothing lands in the current folder (tmp_path here): a figure of a run goes
    into the run's folder, one of registered models into runs/ (docs/analysis.md)."""
    import shutil

    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    shutil.copytree(run, a)
    shutil.copytree(run, b)
    assert main(["plot", str(a)]) == 0
    assert main(["plot", str(a), str(b)]) == 0  # several runs: the folder holding them
    assert main(["kernels", "--checkpoint", str(a / "checkpoints" / "last.safetensors")]) == 0
    assert main(["erf", "--checkpoint", str(b), "--num-images", "2", "--device", "cpu"]) == 0
    assert main(["kernels", "--model", "vit_lkca_500k", "--img-size", "8"]) == 0
    out = capsys.readouterr().out
    for png in (a / "curves.png", tmp_path / "runs" / "curves.png", a / "kernels.png",
                b / "erf.png", Path("runs") / "kernels-vit_lkca_500k.png"):
        _png(tmp_path / png)  # png is absolute but for the last, relative to the current folder
        assert f"wrote {png} (" in out
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_kernel_mosaic_places_each_head_in_its_cell():
    import torch

    small, large = torch.ones(2, 1, 1), torch.arange(18.0).reshape(2, 3, 3)
    mosaic = kernel_mosaic([small, large])  # cells 3x3, one blank row / column between them
    assert mosaic.shape == (7, 7)
    assert mosaic[1, 1] == 1 and mosaic[1, 5] == 1 and np.isnan(mosaic[0, 0])
    assert (mosaic[4:7, 0:3] == large[0].numpy()).all() and (mosaic[4:7, 4:7] == large[1].numpy()).all()
    assert np.isnan(mosaic[3]).all() and np.isnan(mosaic[:, 3]).all()


def test_read_run_accepts_the_metrics_file_itself(run):
    metrics = read_run(run / "metrics.jsonl")
    assert metrics.name == "lkca-run" and metrics.kind == "classification"
    assert [r["epoch"] for r in metrics.records] == [1, 2]


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "not lkca", "mixed kinds"])
def test_plot_mistakes(case, run, seg_run, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    text = {"corrupt": '{"epoch": 1}\n{"epoch": 2, "train_lo', "empty": "\n",
            "not lkca": '{"step": 1}\n'}.get(case)
    if text is not None:
        (bad / "metrics.jsonl").write_text(text)
    expected = {"missing": "metrics.jsonl is missing", "corrupt": "metrics.jsonl line 2 is not",
                "empty": "has no records yet", "not lkca": "not an lkca metrics file",
                "mixed kinds": "run `lkca plot` once for each kind"}[case]
    runs = [str(run), str(seg_run)] if case == "mixed kinds" else [str(bad)]
    _check_error(capsys, ["plot", *runs, "--out", str(tmp_path / "x.png")], expected)
    assert not (tmp_path / "x.png").exists()


def test_kernels_of_a_model_without_lkca(tmp_path, capsys):
    _check_error(capsys, ["kernels", "--model", "vit_500k", "--out", str(tmp_path / "k.png")],
                 "vit_500k has no LKCA blocks (layout AAAA)")


def test_erf_without_a_model(tmp_path, capsys):
    _check_error(capsys, ["erf", "--out", str(tmp_path / "e.png")], "at least one --model")


def test_missing_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    _check_error(capsys, ["plot", str(tmp_path), "--out", str(tmp_path / "x.png")],
                 'pip install "lkca[plot]"')


def test_erf_on_another_data_set_at_its_image_size(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the decoded-array cache stays in tmp
    monkeypatch.setenv("LKCA_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": [1, 2]}))
    argv = ["erf", "--model", "vit_lkca_500k", "--dataset", "cifar10", "--data-dir",
            str(tmp_path / "data"), "--device", "cpu", "--out", str(tmp_path / "e.png")]
    assert main(argv) == 0
    assert _png(tmp_path / "e.png") == (400, 360)
    assert "(2 cifar10 test images, 32x32)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory) -> Path:
    """A run directory holding a 4-block LKCA-S + FPN segmentor checkpoint (tiny widths)."""
    from lkca import create_segmentor
    from lkca.checkpoint.files import save_weights

    out = tmp_path_factory.mktemp("segckpt") / "seg"
    args = {"img_size": 32, "depth": 4, "dim": 32, "num_heads": 2}
    model = create_segmentor("lkca_s_seg", "fpn", 8, head_channels=16, **args)
    save_weights(out / "checkpoints" / "last.safetensors", model, model.pretrained_cfg)
    return out


def test_kernels_of_a_segmentation_checkpoint(seg_checkpoint, tmp_path, capsys):
    assert main(["kernels", "--checkpoint", str(seg_checkpoint), "--out", str(tmp_path / "k.png")]) == 0
    assert _png(tmp_path / "k.png") == (500, 520)  # 4 blocks
    assert "4 LKCA blocks x 1 head, kernels 3x3" in capsys.readouterr().out  # a kernel per block


def test_erf_of_a_segmentation_checkpoint_is_refused(seg_checkpoint, tmp_path, capsys):
    _check_error(capsys, ["erf", "--checkpoint", str(seg_checkpoint), "--out", str(tmp_path / "e.png")],
                 "is a segmentation checkpoint")
