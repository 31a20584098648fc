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
