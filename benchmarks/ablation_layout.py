"""Mixer-layout ablation of ViT-LKCA at about 0.5M parameters: which block, at equal parameters.

    python benchmarks/ablation_layout.py --threads 1          # digits, CPU, 8 variants x 3 seeds
    python benchmarks/ablation_layout.py --threads 1 --set epochs=20 warmup_epochs=2 \
        --model-set init=spt drop_path_schedule=constant    # recipe / model overrides, every run
    python benchmarks/ablation_layout.py --dataset cifar10 --data-dir DATA --device cuda
    python benchmarks/ablation_layout.py --plot-only          # redraw the PNG from the JSON

Results and what they show: docs/ablation.md.

Every run goes through the real engine (``lkca.train.engine.train``) with the recipe of the data
set: on ``digits`` the embedded default job (``DIGITS_DEFAULTS``: 20 epochs, batch 64, lr 2e-3,
no augmentation); on any other data set the paper's recipe (``TrainConfig`` defaults, 100
epochs). ``--set KEY=VALUE`` changes a training-config field for every run (e.g. the
paper-faithful recipe's options, docs/recipe.md), ``--model-set KEY=VALUE`` a model field of
every variant (e.g. ``init=spt``, ``drop_path_schedule=constant``); values are YAML
(``0.1``, ``true``, ``[1, 2]``). Only the model changes between variants, each a registered
model with ``model_args`` (:data:`VARIANTS`). The three at the authors' 0.5M shape:

- ``authors``: the registered ``vit_lkca_500k``, the authors' ViT-LKCA (dim 100, depth 8, LKCA
  alone with one kernel shared by all channels and value / output projections; models/
  create_model.py line 37 of CatworldLee/LKCA-MiniViTsTrainer-Pytorch-CIFAR-TinyImageNet);
- ``text_sa_lkca``: the paper's text read literally at the same width, self-attention + LKCA +
  MLP in every block (one kernel per block, no projections), depth 6 for the same budget;
- ``vit``: the registered ``vit_500k``, ViT/0.5M at the authors' shape (dim 120, depth 4).

The earlier readings, at lkca 0.1.0's 0.5M shape (dim 80, 5 heads, MLP 160, the LayerNorm on
every token before pooling: :data:`OLD_SHAPE`):

- ``lkca``: LKCA in every block, no projections, a kernel per head, depth 18 (lkca 0.1.0's
  ViT-LKCA);
- ``alternate``: LKCA and attention alternating (``LALA...``), depth 12;
- ``lkca_then_attn``: LKCA in the first half, attention in the second (``LLLLLLAAAAAA``), depth 12;
- ``attn``: attention in every block (= ViT, here with mean pooling like the others), depth 9;
- ``lkca_proj``: LKCA in every block with value/output projections, depth 12;
- ``attn_lkca_block``: self-attention + LKCA + MLP in every block, one kernel per block, depth 9;
- ``attn_lkca_head``: the same with a kernel per head, depth 9.

The depths give each variant about the same parameter budget (0.47-0.50M; an attention block
has about twice the weights of an LKCA block without projections); the parameters of each are
recorded, and the training time per epoch (compare it only between variants of one run: the
machine may be shared).

Writes ``benchmarks/results/ablation_layout_readings[_<dataset>].json`` after every run
(machine, settings, every run, mean/std of final and best test top-1 and seconds per epoch per
variant) and skips runs already in it with the same settings, so an interrupted ablation
continues where it stopped; then draws the ``.png`` beside it (bar chart, error bars = std over
seeds). lkca 0.1.0's five-variant results are ``ablation_layout.json`` / ``ablation_layout_e10
.json`` (``--out`` them with ``--plot-only`` to redraw).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # lkca_mixer's machine description
RESULTS = ROOT / "benchmarks" / "results"
BASE_MODEL = "vit_lkca_500k"
# lkca 0.1.0's ViT-LKCA shape and block at 0.5M (dim 80, 5 heads, MLP ratio 2, a kernel per head,
# no projections, LayerNorm on the tokens before pooling); the depth is each variant's.
OLD_SHAPE: dict[str, Any] = {"dim": 80, "num_heads": 5, "kernel_heads": None,
                             "lkca_projections": False, "head_norm": "tokens"}

# name: (label, registered model, model_args)
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "authors": ("the authors' ViT-LKCA (vit_lkca_500k)", "vit_lkca_500k", {}),
    "text_sa_lkca": ("SA + LKCA + MLP, authors' width", "vit_lkca_500k",
                     {"depth": 6, "mixers": "attn_lkca", "lkca_projections": False}),
    "vit": ("ViT/0.5M (vit_500k)", "vit_500k", {}),
    "lkca": ("all LKCA (0.1.0 default)", BASE_MODEL, {**OLD_SHAPE, "depth": 18, "mixers": "lkca"}),
    "alternate": ("alternating L/A", BASE_MODEL,
                  {**OLD_SHAPE, "depth": 12, "mixers": "alternate"}),
    "lkca_then_attn": ("LKCA then attention", BASE_MODEL,
                       {**OLD_SHAPE, "depth": 12, "mixers": "L" * 6 + "A" * 6}),
    "attn": ("all attention (ViT)", BASE_MODEL, {**OLD_SHAPE, "depth": 9, "mixers": "attn"}),
    "lkca_proj": ("all LKCA + projections", BASE_MODEL,
                  {**OLD_SHAPE, "depth": 12, "mixers": "lkca", "lkca_projections": True}),
    "attn_lkca_block": ("SA + LKCA + MLP, kernel/block", BASE_MODEL,
                        {**OLD_SHAPE, "depth": 9, "mixers": "attn_lkca", "kernel_heads": 1}),
    "attn_lkca_head": ("SA + LKCA + MLP, kernel/head", BASE_MODEL,
                       {**OLD_SHAPE, "depth": 9, "mixers": "attn_lkca"}),
}


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=true", "c=1e-3"]`` -> ``{"a": 1, "b": True, "c": 0.001}`` (values read as
    YAML; a number YAML 1.1 leaves a string, such as ``1e-3``, as a float)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key] = parsed
    return out


def run_config(variant: str, seed: int, dataset: str = "digits", data_dir: str | None = None,
               out: Path | str = "runs/ablation_layout", epochs: int | None = None,
               max_steps_per_epoch: int | None = None, device: str = "cpu",
               model_args: dict[str, Any] | None = None, recipe: dict[str, Any] | None = None):
    """The ``TrainConfig`` of one cell: the data set's recipe (with ``recipe`` overrides of its
    fields) and the variant's model (``model_args`` applied on top of the variant's: recipe
    options of the model such as ``init``, or a tiny width for smoke tests)."""
    from lkca.train.config import build_config

    _, model, args = VARIANTS[variant]
    overrides: dict[str, Any] = {
        "dataset": dataset, "data_dir": data_dir, "epochs": epochs,
        "max_steps_per_epoch": max_steps_per_epoch, **(recipe or {}),
        "model": model, "model_args": {**args, **(model_args or {})}, "seed": seed,
        "device": device, "progress": False,
        "out": str(Path(out) / f"{dataset}-{variant}-seed{seed}"),
    }
    return build_config(None, overrides)


def run_cell(variant: str, seed: int, **kwargs: Any) -> dict[str, Any]:
    """Train one (variant, seed) through the engine; its final/best top-1, params, wall time."""
    from lkca.train.engine import train

    cfg = run_config(variant, seed, **kwargs)
    summary = train(cfg)
    return {"variant": variant, "seed": seed, "params": summary["params"],
            "macs": summary["macs"], "epochs": summary["epochs"], "top1": summary["top1"],
            "best_top1": summary["best_top1"], "wall_s": summary["wall_s"],
            "epoch_s": summary["wall_s"] / max(1, summary["epochs"]),
            "train_images_per_s": summary["train_images_per_s"]}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and sample std (0 for one seed) of final and best top-1 and of the seconds per epoch
    per variant."""
    out: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        rows = [r for r in runs if r["variant"] == variant]
        if not rows:
            continue
        entry: dict[str, Any] = {"label": VARIANTS[variant][0], "params": rows[0]["params"],
                                 "macs": rows[0]["macs"], "seeds": len(rows)}
        for key in ("top1", "best_top1", "epoch_s"):
            values = [r[key] for r in rows if key in r]
            if not values:
                continue
            entry[f"{key}_mean"] = statistics.fmean(values)
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out[variant] = entry
    return out


def write_results(path: Path, data: dict[str, Any]) -> None:
    data["variants"] = aggregate(data["runs"])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def plot(data: dict[str, Any], path: Path) -> None:
    """Bar chart of mean final and best test top-1 per variant, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = data["variants"]
    names = [v for v in VARIANTS if v in variants]
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(max(9, 1.5 * len(names)), 4.8), dpi=100)
    width = 0.38
    for offset, key, label in ((-width / 2, "top1", "final"), (width / 2, "best_top1", "best")):
        means = [variants[n][f"{key}_mean"] for n in names]
        stds = [variants[n][f"{key}_std"] for n in names]
        bars = ax.bar([x + offset for x in xs], means, width, yerr=stds, capsize=4, label=label)
        for bar, m in zip(bars, means):
            ax.annotate(f"{m:.1f}", (bar.get_x() + bar.get_width() / 2, m), ha="center",
                        va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{textwrap.fill(variants[n]['label'], 18)}\n"
                        f"{variants[n]['params'] / 1e6:.3f}M params"
                        + (f"\n{variants[n]['epoch_s_mean']:.1f} s/epoch"
                           if "epoch_s_mean" in variants[n] else "")
                        for n in names], fontsize=7)
    lows = [variants[n]["top1_mean"] - 3 * max(variants[n]["top1_std"], 0.5) for n in names]
    ax.set_ylim(max(0.0, min(lows) - 2), 102)  # room for the value labels near 100%
    s = data["settings"]
    counts = sorted({variants[n]["seeds"] for n in names})
    seeds = "-".join(str(c) for c in (counts[0], counts[-1]) if c) if len(counts) > 1 else counts[0]
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"ViT-LKCA mixer layout at ~0.5M params: {s['dataset']}, {s['epochs']} epochs, "
                 f"mean ± std over {seeds} seeds")
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_table(data: dict[str, Any]) -> None:
    print(f"{'variant':<16} {'params':>9} {'seeds':>5} {'final top-1':>15} {'best top-1':>15} "
          f"{'s / epoch':>13}")
    for name, v in data["variants"].items():
        epoch = (f"{v['epoch_s_mean']:>6.1f} ± {v['epoch_s_std']:<4.1f}" if "epoch_s_mean" in v
                 else f"{'-':>13}")
        print(f"{name:<16} {v['params']:>9,} {v['seeds']:>5} "
              f"{v['top1_mean']:>8.2f} ± {v['top1_std']:<4.2f} "
              f"{v['best_top1_mean']:>8.2f} ± {v['best_top1_std']:<4.2f} {epoch}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--epochs", type=int, help="default: the data set's recipe (digits 20)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (1 avoids oversubscribing a shared small CPU)")
    parser.add_argument("--runs-dir", default="runs/ablation_layout",
                        help="where the engine writes each run's directory")
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE", dest="recipe",
                        help="training-config fields for every run (the recipe), e.g. epochs=20")
    parser.add_argument("--model-set", nargs="+", metavar="KEY=VALUE", dest="model_set",
                        help="model fields for every variant, e.g. init=spt")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/"
                        "ablation_layout_readings[_<dataset>].json)")
    parser.add_argument("--plot-only", action="store_true", help="redraw the PNG from the JSON")
    args = parser.parse_args(argv)

    suffix = "" if args.dataset == "digits" else f"_{args.dataset}"
    path = Path(args.out) if args.out else RESULTS / f"ablation_layout_readings{suffix}.json"
    png = path.with_suffix(".png")
    if args.plot_only:
        data = json.loads(path.read_text())
        plot(data, png)
        print_table(data)
        return 0

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    recipe, model_set = parse_assignments(args.recipe), parse_assignments(args.model_set)
    epochs = args.epochs or run_config("lkca", 0, args.dataset, args.data_dir,
                                       recipe=recipe).epochs
    settings = {"dataset": args.dataset, "epochs": epochs, "seeds": args.seeds,
                "device": args.device, "threads": args.threads,
                "variants": {k: {"label": v[0], "model": v[1], "model_args": v[2]}
                             for k, v in VARIANTS.items()},
                "recipe": "DIGITS_DEFAULTS" if args.dataset == "digits" else "paper (TrainConfig)",
                "recipe_overrides": recipe, "model_overrides": model_set}
    data: dict[str, Any] = {"runs": []}
    if path.exists():
        old = json.loads(path.read_text())
        same = {k: old["settings"].get(k) for k in ("dataset", "epochs", "variants",
                                                    "recipe_overrides", "model_overrides")}
        if same == {k: settings[k] for k in same}:
            data = old  # resume: keep finished runs
        else:
            print(f"{path}: settings differ, starting afresh", flush=True)
    from lkca_mixer import machine  # the benchmarks' one machine description

    from lkca.runtime.device import resolve_device

    data["machine"] = machine(resolve_device(args.device))
    data["settings"] = settings
    done = {(r["variant"], r["seed"]) for r in data["runs"]}
    for seed in args.seeds:  # seed-major: a partial ablation has every variant at least once
        for variant in args.variants:
            if (variant, seed) in done:
                continue
            t0 = time.perf_counter()
            print(f"--- {variant} seed {seed}", flush=True)
            row = run_cell(variant, seed, dataset=args.dataset, data_dir=args.data_dir,
                           out=args.runs_dir, epochs=epochs, device=args.device,
                           model_args=model_set, recipe=recipe)
            row["elapsed_s"] = time.perf_counter() - t0
            data["runs"].append(row)
            data["runs"].sort(key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"]))
            write_results(path, data)
            print(f"--- {variant} seed {seed}: top-1 {row['top1']:.2f}%  best "
                  f"{row['best_top1']:.2f}%  ({row['params']:,} params, {row['epoch_s']:.1f} s "
                  "per epoch)",
                  flush=True)
    write_results(path, data)
    plot(data, png)
    print_table(data)
    print(f"wrote {path} and {png}")
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
