"""DDP: 2 and 3 CPU processes (gloo) end with the same parameters as 1 process at the same global
batch.

Stochastic depth is off here: its per-sample masks are drawn by each process for its own shard
(docs/multi-gpu.md); everything else (data order, augmentation, mixing) is chosen for the global
batch, the same whatever the number of processes (lkca.data.train_stream), and each process
augments only the images it trains on and their mixing partners.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from lkca.train.config import TrainConfig
from lkca.train.engine import train

CFG = dict(model="vit_lkca_500k", model_args={"depth": 2, "dim": 32, "num_heads": 2,
                                             "mixers": "LA"},
           dataset="digits", epochs=1, warmup_epochs=0, batch_size=36, max_steps_per_epoch=3,
           autoaugment="cifar10", hflip=True, crop_padding=1, drop_path=0.0, mix_prob=0.5,
           erasing_p=0.25, progress=False, device="cpu")  # a global batch of 36: 6 | 36


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        train(TrainConfig(**CFG, out=out))
        assert not dist.is_initialized()  # the run ended the process group it started
    finally:  # the run ends the process group it started; this only cleans up after a failure
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ddp") / "one"
    train(TrainConfig(**CFG, out=str(out)))
    return load_file(str(out / "checkpoints" / "last.safetensors"))


@pytest.mark.parametrize("world", [2, 3])
def test_processes_match_one(tmp_path, one_process, world):
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path / "many")), nprocs=world, join=True)
    many = load_file(str(tmp_path / "many" / "checkpoints" / "last.safetensors"))
    assert one_process.keys() == many.keys()
    for k in one_process:
        torch.testing.assert_close(one_process[k], many[k], rtol=1e-4, atol=1e-5, msg=k)


def _eval_worker(rank, world, port, out):
    from lkca.data.augment import EvalTransform
    from lkca.runtime.distributed import Dist
    from lkca.train.engine import evaluate

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        model, images, labels = _eval_case()
        top1, loss = evaluate(model, images, labels, EvalTransform((0.5,), (0.25,)), 8,
                              torch.autocast("cpu", enabled=False), Dist(rank, world, False))
        torch.save({"top1": top1, "loss": loss}, f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def _eval_case():
    """A small classifier and 37 images: the 2 ranks' shares (19, 18) are uneven, and their
    last batches partial."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    images = torch.randint(0, 256, (37, 1, 4, 4), dtype=torch.uint8)
    return model, images, torch.randint(0, 3, (37,))


def test_evaluation_sharded_over_two_processes_matches_one(tmp_path):
    from lkca.data.augment import EvalTransform
    from lkca.train.engine import evaluate

    model, images, labels = _eval_case()
    top1, loss = evaluate(model, images, labels, EvalTransform((0.5,), (0.25,)), 8,
                          torch.autocast("cpu", enabled=False))
    mp.spawn(_eval_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        got = torch.load(tmp_path / f"{rank}.pt")
        assert got["top1"] == top1  # the counts are exact
        # the loss: float32 sums over other batches (the shares split the batches differently)
        assert abs(got["loss"] - loss) < 1e-6 * abs(loss)
    assert 0 < top1 < 100
