"""Shared by the tests that run `lkca train` for real: a CPU-cheap digits config, and the check
that a command failed as every user-facing failure must (exit 2, one line, no traceback)."""

from __future__ import annotations

from lkca.cli import main

# One block of width 16 on the embedded digits, batches of 32 (a test adds its epochs and
# max_steps_per_epoch: a few steps take seconds on a CPU).
TINY_TRAIN_YAML = """dataset: digits
model: vit_lkca_500k
model_args: {depth: 1, dim: 16, num_heads: 2}
warmup_epochs: 0
batch_size: 32
"""


def assert_one_line_error(capsys, argv: list[str], expected: str) -> str:
    """Run ``lkca ARGV``: exit code 2 and one stderr line containing ``expected`` (returned)."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    return err


def snapshot(root) -> dict[str, bytes | None]:
    """Every path under ``root`` (files with their bytes, folders as None): what a refused
    command must leave exactly as it was (nothing created, nothing changed). A file past 64 MiB
    (a sparse hostile fixture) stands as its size, modification time and first and last MiB."""
    from pathlib import Path

    out: dict[str, bytes | None] = {}
    for path in sorted(Path(root).rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            out[key] = b"<special>"
        elif path.is_file() and path.stat().st_size > 64 * 2**20:
            info = path.stat()
            with open(path, "rb") as f:
                head = f.read(2**20)
                f.seek(-(2**20), 2)
                out[key] = f"{info.st_size} {info.st_mtime_ns}".encode() + head + f.read()
        else:
            out[key] = path.read_bytes() if path.is_file() else None
    return out


def assert_refused(capsys, argv: list[str], expected: str, root) -> str:
    """:func:`assert_one_line_error`, and every file under ``root`` byte-identical afterwards
    with nothing created."""
    before = snapshot(root)
    err = assert_one_line_error(capsys, argv, expected)
    assert snapshot(root) == before, err
    return err


# A seconds-long `lkca seg train` on the tiny ADE20K fixtures (tests/seg/conftest.py write_pair):
# a 4-block LKCA-S with an FPN head on 32x32 crops; a test fills in the iterations and adds keys.
TINY_SEG_YAML = """base: {base}
backbone: lkca_s_seg
head: fpn
model_args: {{depth: 4, dim: 32, num_heads: 2, head_channels: 16}}
crop_size: 32
img_scale: [64, 32]
batch_size: 2
warmup_iters: 2
slide_stride: 16
iters: {iters}
eval_interval: {eval_interval}
device: cpu
progress: false
"""
