"""`lkca seg train` with its input made ahead (prefetch_batches): the step gets the batches the
synchronous code makes, a corrupt image fails as one line at its iteration after the last save,
and no input thread outlives the run (a signal, an error or the end)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
import torch
from tiny_train import TINY_SEG_YAML, assert_one_line_error

from lkca.checkpoint.files import read_weights
from lkca.cli import main
from lkca.data.ade20k import load_ade20k
from lkca.seg import engine
from lkca.seg.transforms import TrainTransform

BASE = Path(__file__).resolve().parents[2] / "configs" / "seg" / "ade20k" / "base.yaml"
CONFIG = TINY_SEG_YAML.format(base=BASE, iters=4, eval_interval=2)
THREAD = "lkca-seg-train-input"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data(tmp_path, tiny_train_data) -> Path:
    (tmp_path / "c.yaml").write_text(CONFIG)
    return tmp_path


def _train(tmp: Path, out: str, *extra: str) -> int:
    return main(["seg", "train", "--config", str(tmp / "c.yaml"), "--data-dir", str(tmp / "data"),
                 "--out", str(tmp / out), *extra])


def _input_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in (THREAD, "lkca-seg-eval-input")]


def _reference_batches(data_dir: Path, iters: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The synchronous code: each iteration's batch made on the spot from its seeds."""
    ds = load_ade20k(data_dir, "training")
    transform = TrainTransform(scale=(64, 32), crop_size=(32, 32))
    batches = []
    for it in range(iters):
        gen = torch.Generator().manual_seed(engine.iter_seed(0, it, 0, "augment"))
        idx = engine.sample_indices(0, it, 2, len(ds))
        batches.append(transform([ds[i] for i in idx], "cpu", gen))
    return batches


def test_the_step_trains_on_the_synchronous_codes_batches_whatever_prefetch_batches(data,
                                                                                     monkeypatch):
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    made_on: set[str] = set()
    forward, sample = engine._TrainStep.forward, engine.sample_indices

    def recording_forward(self, images, labels):
        seen.append((images.clone(), labels.clone()))
        return forward(self, images, labels)

    def recording_sample(*args):
        made_on.add(threading.current_thread().name)
        return sample(*args)

    monkeypatch.setattr(engine._TrainStep, "forward", recording_forward)
    monkeypatch.setattr(engine, "sample_indices", recording_sample)
    reference = _reference_batches(data / "data", 4)
    weights = {}
    for depth in (0, 3):
        seen.clear()
        made_on.clear()
        assert _train(data, f"p{depth}", "--set", f"prefetch_batches={depth}") == 0
        assert made_on == ({"MainThread"} if depth == 0 else {THREAD})
        assert len(seen) == 4
        for (images, labels), (ref_images, ref_labels) in zip(seen, reference):
            assert torch.equal(images, ref_images) and torch.equal(labels, ref_labels)
        weights[depth], _ = read_weights(data / f"p{depth}" / "checkpoints" / "last.safetensors")
        assert not _input_threads()
    assert all(torch.equal(weights[0][k], weights[3][k]) for k in weights[0])
    rows = [[{k: v for k, v in json.loads(line).items() if k != "iters_per_s"}
             for line in (data / f"p{d}" / "metrics.jsonl").read_text().splitlines()]
            for d in (0, 3)]
    assert rows[0] == rows[1] and [r["iter"] for r in rows[0]] == [2, 4]
    # prefetch_batches may change on --resume: the run continues as if it had not
    assert _train(data, "r", "--set", "prefetch_batches=0", "stop_after_iters=1") == 0
    assert _train(data, "r", "--resume", "--set", "prefetch_batches=3") == 0
    resumed, _ = read_weights(data / "r" / "checkpoints" / "last.safetensors")
    assert all(torch.equal(weights[0][k], resumed[k]) for k in weights[0])


def test_a_corrupt_image_made_ahead_fails_as_one_line_at_its_iteration(data, capsys):
    ds = load_ade20k(data / "data", "training")
    bad = engine.sample_indices(0, 1, 2, len(ds))[0]  # an image of iteration 2 (0-based 1) ...
    assert bad not in engine.sample_indices(0, 0, 2, len(ds))  # ... not of iteration 1
    path = ds.image_paths[bad]
    path.write_bytes(b"not a jpeg")
    code = _train(data, "run", "--set", "prefetch_batches=2", "eval_interval=1")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert path.name in err and "cannot be decoded" in err
    # iteration 1 was evaluated and saved before iteration 2's batch was needed
    rows = (data / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["iter"] for r in rows] == [1]
    assert (data / "run" / "checkpoints" / "last.pt").is_file()
    assert not _input_threads()


def test_sigterm_saves_and_leaves_no_input_thread(data, monkeypatch, capsys):
    seed_of = engine.iter_seed

    def sigterm_in_iter_2(seed, it, rank=0, stream=""):
        if it == 1 and stream == "model":
            os.kill(os.getpid(), signal.SIGTERM)
        return seed_of(seed, it, rank, stream)

    monkeypatch.setattr(engine, "iter_seed", sigterm_in_iter_2)
    assert _train(data, "run", "--set", "prefetch_batches=2", "iters=40") == 2
    assert "stopped by SIGTERM at iter 2" in capsys.readouterr().err
    assert (data / "run" / "checkpoints" / "last.pt").is_file()
    assert not _input_threads()


def test_a_negative_prefetch_batches_is_one_line(data, capsys):
    assert_one_line_error(capsys, ["seg", "train", "--config", str(data / "c.yaml"), "--data-dir",
                                   str(data / "data"), "--out", str(data / "run"), "--set",
                                   "prefetch_batches=-1"], "prefetch_batches must be >= 0")
    assert not (data / "run").exists()
