"""Which registered classifiers export to ONNX: every model at its default size, exported with
``lkca.export.onnx_export.export_onnx`` (dynamic batch, LKCA as ``toeplitz``) and run in
onnxruntime on the CPU at batch 1 and 3 against PyTorch.

    python benchmarks/onnx_export.py                  # every registered model (minutes on CPU)
    python benchmarks/onnx_export.py vit_lkca_1m      # some

Writes ``benchmarks/results/onnx_export.json`` (per model: ok, max abs diff or the one-line reason,
ONNX file size, export seconds) with the machine description, and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from lkca_mixer import machine  # noqa: E402

import lkca  # noqa: E402
from lkca.export.onnx_export import export_onnx, onnx_max_abs_diff  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: every registered one)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_export.json"))
    args = parser.parse_args()
    import onnx
    import onnxruntime
    import onnxscript

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models or lkca.list_models():
            torch.manual_seed(0)
            model = lkca.create_model(name)
            t0 = time.perf_counter()
            row: dict = {"model": name}
            try:
                path = export_onnx(model, Path(tmp) / f"{name}.onnx")
                row.update(ok=True, export_s=round(time.perf_counter() - t0, 1),
                           mb=round(path.stat().st_size / 1e6, 2),
                           max_abs_diff=onnx_max_abs_diff(model, path, (1, 3)))
            except lkca.UserError as err:
                row.update(ok=False, reason=str(err))
            rows.append(row)
            print(f"{name:24s} {'ok' if row['ok'] else 'FAIL'}  "
                  f"{row.get('max_abs_diff', row.get('reason'))}", flush=True)
    result = {"benchmark": "onnx_export", "machine": machine(torch.device("cpu")),
              "versions": {"onnx": onnx.__version__, "onnxscript": onnxscript.__version__,
                           "onnxruntime": onnxruntime.__version__},
              "batch_sizes": [1, 3], "lkca_impl": "toeplitz", "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from script_errors import run_script  # beside this script (benchmarks/ is sys.path[0])

    run_script(main)
