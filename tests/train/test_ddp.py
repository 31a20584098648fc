"""DDP: 2 CPU processes (gloo) end with the same parameters as 1 process at the same global batch.

Stochastic depth is off here: its per-sample masks are drawn by each process for its own shard
(docs/multi-gpu.md), everything else (data order, augmentation, mixing) is drawn for the global
batch identically on every rank.
"""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from lkca.train.config import TrainConfig
from lkca.train.engine import train

CFG = dict(model="vit_lkca_500k", model_args={"depth": 2, "dim": 32, "num_heads": 2,
                                             "mixers": "LA"},
           dataset="digits", epochs=1, warmup_epochs=0, batch_size=32, max_steps_per_epoch=3,
           autoaugment="none", hflip=False, crop_padding=1, drop_path=0.0, mix_prob=0.5,
           erasing_p=0.25, progress=False, device="cpu")


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


def test_two_processes_match_one(tmp_path):
    torch.set_num_threads(1)
    train(TrainConfig(**CFG, out=str(tmp_path / "one")))
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=True)
    one = load_file(str(tmp_path / "one" / "checkpoints" / "last.safetensors"))
    two = load_file(str(tmp_path / "two" / "checkpoints" / "last.safetensors"))
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(one[k], two[k], rtol=1e-4, atol=1e-5, msg=k)
