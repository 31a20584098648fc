"""Training-step time of LKCA-B and ViT-B: ours, and references of the authors' code.

    OMP_NUM_THREADS=2 python benchmarks/train_step_speed.py

One training step = forward of a (64, 3, 32, 32) batch, cross-entropy, ``zero_grad``, backward and
an AdamW step (lr 1e-3, weight decay 0.05), every model in train mode with stochastic depth 0.1
(the authors' ``--sd``), on the CPU with 2 threads (``torch.set_num_threads(2)``). Cases:

- ``ours_lkca_b``: ``lkca.create_model("lkca_b", drop_path_rate=0.1)`` (``impl="auto"``);
- ``ours_vit_b``: ``lkca.create_model("vit_small", drop_path_rate=0.1)``;
- ``ref_lkca_b``: the authors' ViT-LKCA at LKCA-B's shape (dim 210, depth 10, MLP 420) written
  here from the documented math of their convolution view (CatworldLee/LKCA-MiniViTsTrainer-
  Pytorch-CIFAR-TinyImageNet ``models/largevit_cnn.py`` lines 78-86: the values of every channel
  as a (B * C, 1, H, W) batch, ``F.conv2d`` with the one (1, 1, 15, 15) kernel, padding 7);
- ``ref_vit_b``: SPT's plain ViT-B (``models/vit.py``: qkv Linear, QK^T * scale, softmax, AV, as
  explicit products) written here from the same math.

The cases run round-robin (one step of each in turn) after warm-up steps, so a change in the
machine's load hits all alike; each figure is the median of its steps, and only the ratios
(within this one run) are reported. Writes ``benchmarks/results/train_step_speed_cpu.json``;
docs/benchmarks.md quotes it. Targets: ours_lkca_b / ours_vit_b <= 1 and ours_vit_b /
ref_vit_b <= 1 (exit 1 when one fails).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lkca_mixer import machine  # noqa: E402

import lkca  # noqa: E402


class DropPath(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand(x.shape[0], 1, 1, device=x.device) + 1 - self.p).floor()
        return x / (1 - self.p) * keep


class RefBlock(nn.Module):
    """x + DropPath(mixer(LN x)); x + DropPath(MLP(LN x)), one DropPath for both (their
    Transformer, lines 97-115)."""

    def __init__(self, dim: int, heads: int, lkca_view: bool, grid: int) -> None:
        super().__init__()
        self.lkca_view, self.heads, self.grid = lkca_view, heads, grid
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        if lkca_view:
            self.to_v = nn.Linear(dim, dim, bias=False)
            self.kernel = nn.Parameter(torch.zeros(1, 1, 2 * grid - 1, 2 * grid - 1))
        else:
            self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.drop_path = DropPath(0.1)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        if self.lkca_view:
            v = self.to_v(x).transpose(1, 2).reshape(B * C, 1, self.grid, self.grid)
            out = F.conv2d(v, self.kernel, padding=self.grid - 1)
            return self.to_out(out.reshape(B, C, N).transpose(1, 2))
        q, k, v = self.to_qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) * (C // self.heads) ** -0.5, dim=-1)
        return self.to_out((att @ v).transpose(1, 2).reshape(B, N, C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.mix(self.norm1(x)))
        return x + self.drop_path(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class RefModel(nn.Module):
    """Patches in (p1 p2 c) order -> Linear -> (+ class token) + position table -> blocks ->
    head LN + Linear on the mean (LKCA) or the class token (ViT)."""

    def __init__(self, dim: int, depth: int, heads: int, lkca_view: bool) -> None:
        super().__init__()
        self.lkca_view = lkca_view
        self.patch = nn.Linear(48, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 64 + (0 if lkca_view else 1), dim))
        self.blocks = nn.ModuleList(RefBlock(dim, heads, lkca_view, 8) for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 10)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        B = img.shape[0]
        x = self.patch(img.reshape(B, 3, 8, 4, 8, 4).permute(0, 2, 4, 3, 5, 1).reshape(B, 64, 48))
        if not self.lkca_view:
            x = torch.cat([self.cls.expand(B, -1, -1), x], dim=1)
        x = x + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x.mean(1) if self.lkca_view else x[:, 0]))


def build_cases() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"ours_lkca_b": lkca.create_model("lkca_b", drop_path_rate=0.1),
            "ours_vit_b": lkca.create_model("vit_small", drop_path_rate=0.1),
            "ref_lkca_b": RefModel(210, 10, 10, lkca_view=True),
            "ref_vit_b": RefModel(192, 9, 12, lkca_view=False)}


def step_fn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)

    def step() -> None:
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "train_step_speed_cpu.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, 32, 32, generator=gen)
    labels = torch.randint(0, 10, (args.batch,), generator=gen)
    models = build_cases()
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    steps = {k: step_fn(m, images, labels) for k, m in models.items()}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    samples: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            samples[name].append(time.perf_counter() - t0)
    median = {k: statistics.median(v) for k, v in samples.items()}
    ratios = {"ours_lkca_b / ours_vit_b": median["ours_lkca_b"] / median["ours_vit_b"],
              "ours_vit_b / ref_vit_b": median["ours_vit_b"] / median["ref_vit_b"],
              "ours_lkca_b / ref_lkca_b": median["ours_lkca_b"] / median["ref_lkca_b"],
              "ours_lkca_b / ref_vit_b": median["ours_lkca_b"] / median["ref_vit_b"],
              "ref_lkca_b / ref_vit_b": median["ref_lkca_b"] / median["ref_vit_b"]}
    impls = sorted({m.impl for m in models["ours_lkca_b"].modules() if isinstance(m, lkca.LKCA)})
    targets = {"ours_lkca_b <= ours_vit_b": ratios["ours_lkca_b / ours_vit_b"] <= 1.0,
               "ours_vit_b <= ref_vit_b": ratios["ours_vit_b / ref_vit_b"] <= 1.0}
    result = {"machine": machine(torch.device("cpu")),
              "settings": {"threads": args.threads, "batch": args.batch, "warmup": args.warmup,
                           "rounds": args.rounds, "optimizer": "AdamW lr 1e-3 wd 0.05",
                           "drop_path": 0.1, "img_size": 32},
              "params": params, "lkca_impl": impls,
              "auto_choices": lkca.impl_choices(),
              "median_step_s": median, "samples_s": samples, "ratios": ratios, "targets": targets}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for k, v in ratios.items():
        print(f"{k:<28} {v:.3f}")
    print("targets:", targets)
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
