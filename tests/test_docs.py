"""Every command and Python example of README.md and docs/*.md, run on tiny settings or, where it
needs a real data set, a GPU or a network, checked by argument parsing.

What is extracted (``_extract``):
- shell commands: the lines of fenced ``bash`` / ``sh`` / ``shell`` / ``console`` blocks (backslash
  continuations joined, ``#`` comments dropped, ``a && b`` split into two commands);
- Python examples: fenced ``python`` blocks;
- synopses: inline code spans that start with ``lkca``, ``python -m lkca`` or ``torchrun`` in
  prose and tables (``lkca train [--config YAML] ...``).

How each is checked, by rule (``_plan``), in a fresh working directory per page (with ``configs/``
and ``benchmarks/`` linked in and an empty ``runs/``), the page's commands in order (so
``lkca train --out runs/x`` then ``lkca export --checkpoint runs/x`` runs both):
- RUN ``lkca ...`` / ``python -m lkca ...`` in-process, with the tiny substitutions of
  :data:`TINY` (``lkca train``: a 1-block model on digits, 2 steps per epoch, 1 epoch -- or, when
  the command sets ``model_args`` itself, its own model for 2 steps, so the model the page
  builds is the one checked; ``lkca erf``: 2 images; ``lkca tables``: Table 1 only) -- unless
  one of the PARSE rules applies;
- PARSE (``build_parser().parse_args``, every ``configs/...`` path must exist) when the command
  is ``lkca reproduce`` without ``--dry-run`` (it trains every run of a table), names a
  placeholder of :data:`PLACEHOLDERS` (``DIR``, ``...``, ``HOST0:29500`` ...), a home or absolute
  path (``~/data``: a real data set), ``--device cuda``, a ``--data-dir`` (a real data
  set), an input path that does not exist in the page's directory (a real run), a sub-command of
  :data:`PARSE_ONLY` (``seg train/eval/predict``: ADE20K) or comes after ``torchrun`` (several
  processes; DDP itself is tested in tests/train/test_ddp.py);
- ``python -c`` runs in a subprocess; ``python benchmarks/X.py`` runs ``--help`` (a benchmark takes
  minutes); ``pip install`` checks that the extras it names exist in pyproject.toml (no install);
  ``python -m pytest`` is this suite (not run); anything in :data:`NOT_RUN` is listed with why;
- synopses: the sub-command exists and every ``--flag`` in the span is one of its options; a
  span that is a whole example (arguments past the sub-command, no ``[`` or ``|``, and it parses:
  ``lkca train --epochs 2 --set lr=3e-3 model_args.dim=64``) is also checked as a shell command
  above (run on tiny settings, or parsed by the same rules);
- figures: every figure marked with its result file (``<!--fig FILE PATH-->``, an output block
  ``<!--output FILE PATH-->``; tests/docs_figures.py) equals that file's value;
- Python blocks run with ``exec`` unless marked by an HTML comment ``<!-- docs-test: skip REASON
  -->`` right before the block or listed in :data:`PYTHON_NOT_RUN`.
Other helpers' sub-commands are found through ``build_parser()``, so commands added later are
picked up by the same rules.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from docs_figures import check_marks, marked_files

from lkca.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PLACEHOLDERS = {"DIR", "...", "HOST0:29500", "PATH", "RUN", "RUN_DIR", "ARCHIVE", "YAML", "NAME",
                "photo.jpg", "N", "D", "M"}
PARSE_ONLY = {("seg", "train"): "needs ADE20K", ("seg", "eval"): "needs ADE20K",
              ("seg", "predict"): "needs a trained segmentor and an image",
              ("data", "extract"): "needs a downloaded archive"}
OUTPUT_FLAGS = {"--out", "--to"}
# (page, start of the command) -> why it is not run here
NOT_RUN = {
    ("mmseg.md", "python tools/train.py"): "needs an MMSegmentation checkout and mmcv with ops",
}
# (page, start of the block) -> why it is not run here
PYTHON_NOT_RUN = {
    ("baselines.md", "@register_model"): "an excerpt of a model file (decorator and factory only)",
}
TINY_TRAIN_YAML = """dataset: digits
model: vit_lkca_500k
model_args: {depth: 1, dim: 16, num_heads: 2}
max_steps_per_epoch: 2
warmup_epochs: 0
batch_size: 32
"""
# sub-command -> flags appended (or replacing the page's value) for a tiny run
TINY = {
    ("train",): {"--epochs": "1", "--device": "cpu", "--no-progress": None},
    ("erf",): {"--num-images": "2", "--device": "cpu"},
    ("tables",): {"--table": "1"},  # counting the models of all seven tables takes minutes
}
SHELL_LANGS = {"bash", "sh", "shell", "console"}


def _extract(page: Path) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(shell commands, python blocks as (text, marker before), synopses) of a Markdown page."""
    text = page.read_text()
    commands, blocks = [], []
    for m in re.finditer(r"(?:<!--\s*docs-test:([^>]*)-->\s*\n)?```(\w*)\n(.*?)```", text, re.S):
        marker, lang, body = m.group(1) or "", m.group(2), m.group(3)
        if lang in SHELL_LANGS:
            joined = re.sub(r"\\\n\s*", " ", body)
            for line in joined.splitlines():
                words = shlex.split(line, comments=True)
                while words:
                    cut = words.index("&&") if "&&" in words else len(words)
                    commands.append(shlex.join(words[:cut]))
                    words = words[cut + 1:]
        elif lang == "python":
            blocks.append((body, marker.strip()))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    synopses = [s for s in re.findall(r"`([^`\n]+)`", prose)
                if re.match(r"(lkca |python -m lkca |torchrun )", s)
                and not re.match(r"lkca[\w ]*: ", s)]  # a quoted message (`lkca train: error: ...`)
    return commands, blocks, synopses


def _subcommand(parser: argparse.ArgumentParser, words: list[str]):
    """(path of sub-command names, its parser) for lkca arguments ``words``."""
    path: list[str] = []
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or not words or words[0] not in subs[0].choices:
            return tuple(path), parser
        path.append(words[0])
        parser = subs[0].choices[words[0]]
        words = words[1:]


def _lkca_args(words: list[str]) -> list[str] | None:
    """The lkca arguments of ``lkca ...``, ``python -m lkca ...``, ``torchrun ... -m lkca ...``."""
    if words[0] == "lkca":
        return words[1:]
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "lkca":
            return words[i + 2:]
    return None


def _looks_like_path(value: str) -> bool:
    return "/" in value or bool(re.search(r"\.(ya?ml|json|safetensors|pt|onnx|png|jpe?g|zip|gz)$",
                                          value))


def _plan(words: list[str], cwd: Path) -> tuple[str, str]:
    """("run" | "parse", why) for lkca arguments ``words`` (see the module docstring)."""
    path, _ = _subcommand(build_parser(), words)
    if path in PARSE_ONLY:
        return "parse", PARSE_ONLY[path]
    if any(w in PLACEHOLDERS for w in words):
        return "parse", "placeholder argument"
    if any(w.startswith(("~", "/")) for w in words):
        return "parse", "a home or absolute path: a real data set or run"
    if "--data-dir" in words:
        return "parse", "needs a real data set"
    if "cuda" in words:
        return "parse", "needs a GPU"
    if path == ("reproduce",) and "--dry-run" not in words:
        return "parse", "trains every run of a table"
    for prev, w in zip(["", *words], words):
        if prev not in OUTPUT_FLAGS and _looks_like_path(w) and not (cwd / w).exists():
            return "parse", f"input {w} does not exist here (a real run)"
    return "run", ""


def _tiny(words: list[str], cwd: Path) -> list[str]:
    path, _ = _subcommand(build_parser(), words)
    words = list(words)
    for flag, value in TINY.get(path, {}).items():
        if flag in words:
            i = words.index(flag)
            if value is not None:
                words[i + 1] = value
        else:
            words += [flag] if value is None else [flag, value]
    if path == ("train",) and "--config" not in words:
        if any(w.startswith("model_args.") for w in words):  # the page's own model, 2 steps
            words += ["--set", "max_steps_per_epoch=2", "warmup_epochs=0"]
        else:
            (cwd / "tiny.yaml").write_text(TINY_TRAIN_YAML)
            words += ["--config", "tiny.yaml"]
    return words


def _parse(words: list[str]) -> None:
    dummies = {"...": "configs/cls/base.yaml", "N": "1", "HOST0:29500": "localhost:29500"}
    args = [dummies.get(w, w) for w in words]
    build_parser().parse_args(args)  # SystemExit on a bad flag
    for w in words:
        if w.startswith("configs/"):
            assert (ROOT / w).exists(), f"{w} does not exist"


def _check_pip(command: str) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for group in re.findall(r"\.\[([\w,]+)\]", command):
        for extra in group.split(","):
            assert extra in extras, f"{command}: no extra [{extra}] in pyproject.toml"


def _workdir(tmp_path: Path) -> Path:
    for name in ("configs", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "runs").mkdir()  # where `lkca train` writes and `lkca tables` looks by default
    return tmp_path


def _run_shell(page: Path, command: str, cwd: Path, capsys) -> str:
    """Check one shell command; returns what was done (for the failure report)."""
    words = shlex.split(command)
    for (name, start), why in NOT_RUN.items():
        if page.name == name and command.startswith(start):
            return f"not run: {why}"
    if words[:2] == ["pip", "install"]:
        _check_pip(command)
        return "pip: extras checked"
    if words[:3] == ["python", "-m", "pytest"]:
        return "not run: this test suite"
    if words[:2] == ["python", "-c"]:
        out = subprocess.run([sys.executable, *words[1:]], cwd=cwd, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, f"{command}\n{out.stderr[-2000:]}"
        return "ran"
    if words[0] == "python" and len(words) > 1 and words[1].startswith("benchmarks/"):
        out = subprocess.run([sys.executable, words[1], "--help"], cwd=cwd, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, f"{words[1]} --help\n{out.stderr[-2000:]}"
        return "--help"
    args = _lkca_args(words)
    assert args is not None, f"{page.name}: no rule for the command {command!r}; add one to NOT_RUN"
    mode, why = _plan(args, cwd)
    if words[0] == "torchrun":
        mode, why = "parse", "several processes"
    if mode == "parse":
        _parse(args)
        return f"parsed ({why})"
    code = main(_tiny(args, cwd))
    err = capsys.readouterr().err
    assert code == 0, f"{command} -> exit {code}: {err.strip()[-500:]}"
    return "ran"


def _pages_with(part: int) -> list[Path]:
    """The pages with at least one item of ``_extract``'s ``part`` (0 shell commands, 1 Python
    blocks, 2 synopses): a page without any has nothing to test and gets no case, rather than a
    SKIPPED line."""
    return [page for page in PAGES if _extract(page)[part]]


@pytest.mark.parametrize("page", _pages_with(0), ids=lambda p: p.name)
def test_shell_commands(page, tmp_path, monkeypatch, capsys):
    commands, _, _ = _extract(page)
    monkeypatch.chdir(_workdir(tmp_path))
    for command in commands:
        _run_shell(page, command, tmp_path, capsys)


@pytest.mark.parametrize("page", _pages_with(1), ids=lambda p: p.name)
def test_python_examples(page, tmp_path, monkeypatch, capsys):
    _, blocks, _ = _extract(page)
    monkeypatch.chdir(_workdir(tmp_path))
    for body, marker in blocks:
        if marker.startswith("skip") or any(
                page.name == name and body.startswith(start)
                for (name, start) in PYTHON_NOT_RUN):
            continue
        capsys.readouterr()
        exec(compile(body, f"{page.name}:python", "exec"), {"__name__": "__docs__"})
        _check_printed(page, body, capsys.readouterr().out)


def _check_printed(page: Path, body: str, printed: str) -> None:
    """Where a block states its output with a ``# prints: VALUE`` comment, the block printed
    exactly the line VALUE (in the order of the comments)."""
    expected = [v.strip() for v in re.findall(r"#\s*prints:\s*(.+)$", body, re.M)]
    lines = [line.strip() for line in printed.splitlines()]
    for value in expected:
        assert value in lines, f"{page.name}: the example prints {lines}, the page says {value}"
        lines = lines[lines.index(value) + 1:]


def _is_example(span: str) -> bool:
    """Whether an inline span is a whole command to check as one (``lkca list lkca``), not a
    synopsis (``lkca train [--config YAML]``), a bare command name or a flag named in prose."""
    if any(c in span for c in "[]|<>") or span.startswith("torchrun"):
        return False
    args = _lkca_args(shlex.split(span))
    if args is None:
        return False
    path, _ = _subcommand(build_parser(), args)
    if len(args) == len(path):
        return False
    try:
        _parse(args)
    except SystemExit:  # a flag named without its value (`lkca tables --runs`): prose
        return False
    return True


@pytest.mark.parametrize("page", [p for p in PAGES if any(map(_is_example, _extract(p)[2]))],
                         ids=lambda p: p.name)
def test_inline_examples(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_workdir(tmp_path))
    for span in filter(_is_example, _extract(page)[2]):
        _run_shell(page, span, tmp_path, capsys)


@pytest.mark.parametrize("page", _pages_with(2), ids=lambda p: p.name)
def test_synopses_name_real_commands_and_flags(page):
    _, _, synopses = _extract(page)
    parser = build_parser()
    for span in synopses:
        words = span.replace("[", " ").replace("]", " ").replace("|", " ").split()
        args = _lkca_args(words)
        if args is None:  # torchrun without -m lkca: nothing of ours to check
            continue
        path, sub = _subcommand(parser, args)
        assert path, f"{page.name}: `{span}` names no lkca sub-command"
        known = {o for a in sub._actions for o in a.option_strings}
        flags = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", " ".join(args)))
        assert flags <= known, f"{page.name}: `{span}`: unknown {sorted(flags - known)}"


def test_rules_classify_the_known_cases(tmp_path):
    """The rules of the module docstring on the commands they were written for."""
    assert _plan(["train"], tmp_path) == ("run", "")
    assert _plan(["train", "--data-dir", "DIR"], tmp_path)[0] == "parse"
    assert _plan(["seg", "eval", "--checkpoint", "x"], tmp_path) == ("parse", "needs ADE20K")
    assert _plan(["export", "--checkpoint", "runs/x", "--out", "m.onnx"], tmp_path)[0] == "parse"
    (tmp_path / "runs" / "x").mkdir(parents=True)
    assert _plan(["export", "--checkpoint", "runs/x", "--out", "m.onnx"], tmp_path) == ("run", "")
    assert _plan(["reproduce", "--table", "1", "--dry-run"], tmp_path) == ("run", "")
    assert _plan(["reproduce", "--table", "1"], tmp_path)[0] == "parse"
    assert _tiny(["train", "--epochs", "20"], tmp_path)[:2] == ["train", "--epochs"]
    assert "1" in _tiny(["train", "--epochs", "20"], tmp_path)


def _mixer(grid: int, module: str, key: str):
    return lambda d: next(r for r in d["rows"] if r["grid"] == [grid, grid])["ratios"][module][key]


def _k7(data: dict) -> dict:
    """The ratios of the mixer benchmark's 32x32 k7 row."""
    return next(r for r in data["rows"] if r["grid"] == [32, 32] and r["kernel"] == [7, 7])["ratios"]["lkca"]


BENCHMARK_RATIOS = [  # the ratios docs/benchmarks.md quotes, recomputed from their JSON (a list:
    # two results may quote the same figure)
    ("0.909x", "train_step_speed_cpu.json", lambda d: d["ratios"]["ours_lkca_b / ours_vit_b"]),
    ("0.976x", "train_step_speed_cpu.json", lambda d: d["ratios"]["ours_vit_b / ref_vit_b"]),
    ("0.174x", "train_step_speed_cpu.json", lambda d: d["ratios"]["ours_lkca_b / ref_lkca_b"]),
    ("5.090x", "train_step_speed_cpu.json", lambda d: d["ratios"]["ref_lkca_b / ref_vit_b"]),
    ("3.72x", "augment_throughput_cpu.json",
     lambda d: d["ratios"]["transform cifar10: after / before"]),
    ("153.4x", "augment_throughput_cpu.json", lambda d: d["ratios"]["transform cifar10 / train lkca_b"]),
    ("157.8x", "augment_throughput_cpu.json", lambda d: d["ratios"]["transform svhn / train lkca_b"]),
    ("1.05x", "lkca_mixer_cpu.json", lambda d: max(r["ratios"][m]["auto_to_best"]
                                                  for r in d["rows"] for m in r["ratios"])),
    ("1.09x", "lkca_mixer_cpu_busy.json", lambda d: max(r["ratios"][m]["auto_to_best"]
                                                       for r in d["rows"] for m in r["ratios"])),
    ("0.71x", "lkca_mixer_cpu_busy.json", lambda d: min(v for r in d["rows"]
                                                       for v in r["auto_to_choice_paired"].values())),
    ("1.09x", "lkca_mixer_cpu_busy.json", lambda d: max(v for r in d["rows"]
                                                       for v in r["auto_to_choice_paired"].values())),
    ("0.98x", "lkca_mixer_cpu.json", lambda d: min(v for r in d["rows"]
                                                  for v in r["auto_to_choice_paired"].values())),
    ("1.05x", "lkca_mixer_cpu.json", lambda d: max(v for r in d["rows"]
                                                  for v in r["auto_to_choice_paired"].values())),
    ("1.36x", "lkca_mixer_cpu.json", lambda d: _k7(d)["fft_to_best"]),
    ("8.41x", "lkca_mixer_cpu.json", lambda d: _k7(d)["toeplitz_to_best"]),
    ("4.00x", "lkca_mixer_cpu_busy.json", lambda d: _k7(d)["fft_to_best"]),
    ("4.63x", "lkca_mixer_cpu_busy.json", lambda d: _k7(d)["toeplitz_to_best"]),
    ("8.41x", "lkca_mixer_cpu.json", lambda d: max(r["rule_to_best"] for r in d["rows"])),
    ("4.63x", "lkca_mixer_cpu_busy.json", lambda d: max(r["rule_to_best"] for r in d["rows"])),
    ("0.09x", "lkca_mixer_cpu.json", _mixer(8, "lkca", "auto_to_attention")),
    ("9.8x", "lkca_mixer_cpu.json", _mixer(16, "lkca", "conv_to_auto")),
    ("41.0x", "lkca_mixer_cpu.json", _mixer(32, "lkca", "conv_to_auto")),
    ("5.2x", "lkca_mixer_cpu.json", _mixer(16, "lkca_proj", "conv_to_auto")),
    ("156.8x", "train_throughput_cpu.json", lambda d: d["ratios"]["pipeline_to_train vit_2p7m"]),
    ("155.9x", "train_throughput_cpu.json", lambda d: d["ratios"]["pipeline_to_train vit_lkca_2p7m"]),
    ("1.01x", "train_throughput_cpu.json", lambda d: d["ratios"]["lkca_to_vit_train"]),
    ("1.12x", "seg_step_cpu.json",
     lambda d: d["checks"]["lkca_s_not_slower_than_vit_s_upernet"]["ratio"]),
    ("1.40x", "seg_step_cpu.json", lambda d: d["checks"]["lkca_s_not_slower_than_vit_s_fpn"]["ratio"]),
    ("0.52x", "ci_suite_cpu.json", lambda d: d["suite"]["ratio_after_to_before"]),
    ("0.57x", "ci_suite_cpu.json", lambda d: d["cli_import_cpu_s"]["ratio_after_to_before"]),
    ("0.08x", "ci_suite_cpu.json", lambda d: d["docs_test_paper_tables_s"]["ratio_after_to_before"]),
    ("0.87x", "ci_suite_cpu.json", lambda d: d["suite_round_2"]["ratio_after_to_before"]),
    ("0.85x", "ci_suite_cpu.json", lambda d: d["suite_round_2"]["fresh_clone"]["ratio_ci_run"]),
]


def _mixer_label(row: dict) -> str:
    return (f"{row['grid'][0]}x{row['grid'][1]} k{row['kernel'][0]} C{row['dim']} h{row['heads']} "
            f"B{row['batch']}")


def _table_cells(text: str, *first: str) -> list[str]:
    """The cells of the one table line of ``text`` that starts with the cells ``first``."""
    start = "| " + " | ".join(first) + " | "
    (line,) = [ln for ln in text.splitlines() if ln.startswith(start)]
    return [c.strip() for c in line.split("|")[1:-1]]


def _fastest(row: dict, mixer: str) -> str:
    timed = {i: row["ms"][f"{mixer}_{i}"] for i in ("conv", "toeplitz", "fft")
             if f"{mixer}_{i}" in row["ms"]}
    return min(timed, key=timed.__getitem__)


def test_the_mixer_tables_are_the_mixer_jsons():
    """docs/benchmarks.md's per-row table (quiet and busy: the fastest, auto's choice, auto over
    the fastest) and first-call table (overhead ms and steps, the tuner's candidates and choice)."""
    results = ROOT / "benchmarks" / "results"
    quiet = json.loads((results / "lkca_mixer_cpu.json").read_text())
    busy = json.loads((results / "lkca_mixer_cpu_busy.json").read_text())
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    per_row, first_calls = text.split("**The first call of a shape**")
    assert [_mixer_label(r) for r in quiet["rows"]] == [_mixer_label(r) for r in busy["rows"]]
    for q, b in zip(quiet["rows"], busy["rows"]):
        for mixer in q["ratios"]:
            cells = _table_cells(per_row, _mixer_label(q), mixer)
            assert cells[2:] == [
                _fastest(q, mixer), q["auto_choice"][mixer], f"{q['ratios'][mixer]['auto_to_best']:.2f}x",
                _fastest(b, mixer), b["auto_choice"][mixer], f"{b['ratios'][mixer]['auto_to_best']:.2f}x"]
        assert all(r["auto_choice"][m] == _fastest(r, m) and r["ratios"][m]["auto_to_best"] <= 1.10
                   for r in (q, b) for m in r["ratios"])  # "the fastest on every row, within 1.10x"
        assert (q["rule_to_best"] == 1.0) is (_mixer_label(q) != "32x32 k7 C192 h12 B8")
        first = q["first_call"]
        cells = _table_cells(first_calls, _mixer_label(q))
        assert cells[1] == f"{first['overhead_ms']:,.0f} ms" and cells[2] == f"{first['overhead_steps']:.1f}"
        assert cells[5] == first["tuner"]["impl"] == q["auto_choice"]["lkca"]
        assert set(cells[3].split(", ")) == set(first["tuner"]["ms"])
        dropped = {c.split(" (")[0] for c in cells[4].split(", ")} - {"none"}
        assert dropped == set(first["tuner"].get("skipped", {}))
    flat = " ".join(text.split())
    steps = [[r["first_call"]["overhead_steps"] for r in data["rows"]] for data in (quiet, busy)]
    assert f"pays {min(steps[0]):.0f}-{max(steps[0]):.0f} steps of one mixer" in flat
    assert f"the first call costs {min(steps[1]):.0f}-{max(steps[1]):.0f} steps" in flat
    k7 = next(r for r in busy["rows"] if _mixer_label(r) == "32x32 k7 C192 h12 B8")["first_call"]["tuner"]
    assert k7["note"].startswith("under load") and k7["impl"] == "conv"  # the final ran, chose conv
    assert f"`fft`'s trimmed mean {k7['ms']['fft']:.1f} ms against `conv`'s {k7['ms']['conv']:.1f} ms" in flat


def test_onnx_export_results_quoted_in_the_docs():
    data = json.loads((ROOT / "benchmarks" / "results" / "onnx_export.json").read_text())
    ok = [r for r in data["rows"] if r["ok"]]
    failed = sorted(r["model"] for r in data["rows"] if not r["ok"])
    worst = max(r["max_abs_diff"] for r in ok)
    worst_text = f"{worst:.1e}".replace("e-0", "e-")  # 1.8e-6
    bench = (ROOT / "docs" / "benchmarks.md").read_text()
    export = (ROOT / "docs" / "pretrained-and-export.md").read_text()
    assert f"{len(ok)} / {len(data['rows'])}" in bench and worst_text in bench
    assert (", ".join(failed) if failed else "none") in bench
    quoted = f"all {len(ok)} export" if not failed else f"{len(ok)} of the {len(data['rows'])}"
    assert quoted in export and worst_text in export


def test_benchmark_page_quotes_its_json():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    results = ROOT / "benchmarks" / "results"
    for quoted, name, get in BENCHMARK_RATIOS:
        data = json.loads((results / name).read_text())
        decimals = len(quoted.split(".")[1]) - 1
        assert f"{get(data):.{decimals}f}x" == quoted, (name, quoted)
        assert quoted in text
        machine = data["machine"]
        assert machine["cores"] == 2 and machine["torch"] == "2.13.0+cpu", name
    for name in re.findall(r"benchmarks/results/([\w.-]+\.json)", text):
        assert (results / name).is_file(), f"docs/benchmarks.md names missing {name}"
    docs_text = "".join(p.read_text() for p in PAGES)
    for path in results.glob("*.json"):
        assert path.name in docs_text, f"{path.name} is described in no page of docs/ (add it)"


def test_readme_lists_every_page_of_docs():
    text = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^- \[docs/([\w.-]+\.md)\]\(docs/\1\)", text, re.M))
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_readme_gives_the_suites_duration_from_its_result_file():
    data = json.loads((ROOT / "benchmarks" / "results" / "ci_suite_cpu.json").read_text())
    minutes = round(data["suite_round_2"]["after"]["wall_s"] / 60)
    assert f"The suite takes about {minutes} minutes on 2 CPU cores" in (ROOT / "README.md").read_text()


def test_readme_keeps_the_set_up_commands_and_links():
    text = (ROOT / "README.md").read_text()
    assert "pip install torch==2.13.0 -e . && lkca train" in text
    assert 'pip install torch==2.13.0 -e ".[test]" && python -m pytest -q' in text
    for link in re.findall(r"\]\((docs/[\w.-]+)\)", text):
        assert (ROOT / link).is_file(), link
    assert os.path.basename(__file__) in text


RESULTS = ROOT / "benchmarks" / "results"


def test_every_marked_figure_matches_its_result_file():
    """The figures of README.md and docs/ marked with their result file (tests/docs_figures.py)
    are that file's numbers today; each file a page quotes names the models it measured."""
    problems = [f"{page.name}: {p}" for page in PAGES for p in check_marks(page.read_text(), RESULTS)]
    assert not problems, "\n".join(problems)
    for name in set().union(*(marked_files(page.read_text()) for page in PAGES)):
        data = json.loads((RESULTS / name).read_text())
        assert data.get("models") and data.get("lkca_version"), f"{name}: no models / lkca_version"


def test_a_planted_wrong_figure_fails(tmp_path):
    """The check on a copy of docs/segmentation.md with one marked figure changed (a digit of
    its first), and on an output block with one digit changed."""
    text = (ROOT / "docs" / "segmentation.md").read_text()
    assert check_marks(text, RESULTS) == []
    first = re.search(r"(<!--fig [^>]+-->\D*)(\d)", text)
    wrong = text[: first.end(1)] + str((int(first.group(2)) + 1) % 10) + text[first.end(2):]
    (tmp_path / "segmentation.md").write_text(wrong)
    problems = check_marks((tmp_path / "segmentation.md").read_text(), RESULTS)
    assert len(problems) == 1 and "should read" in problems[0], problems
    # an output block, on a result file of its own: right, then one digit changed
    (tmp_path / "r.json").write_text(json.dumps({"out": {"erf": "a   1.6%  21.9%\nwrote x.png"}}))
    page = "<!--output r.json out.erf-->\n```\n$ lkca erf ...\na 1.6% 21.9%\nwrote x.png\n```\n"
    assert check_marks(page, tmp_path) == []
    problems = check_marks(page.replace("21.9%", "22.9%"), tmp_path)
    assert len(problems) == 1 and "differs" in problems[0], problems


def test_every_result_file_a_page_names_exists_and_covers_todays_models():
    """onnx_export.json covers exactly the registered classifiers (a model added or renamed
    since it ran means: run benchmarks/onnx_export.py again)."""
    import lkca

    data = json.loads((RESULTS / "onnx_export.json").read_text())
    assert sorted(r["model"] for r in data["rows"]) == lkca.list_models(), \
        "benchmarks/results/onnx_export.json predates the registry: run benchmarks/onnx_export.py"
