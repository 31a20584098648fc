"""The one bounded reader of every YAML and JSON file lkca reads (src/lkca/bounded_files.py), and
the files read through it from the command line: configs, --set values, pretrained records. Each
refusal: exit 2, one line naming the file and the fix, nothing created, every file as it was."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from tiny_train import assert_refused

import lkca
from lkca.bounded_files import FileLimit, parse_json, parse_yaml, read_json, read_text, read_yaml

TINY = {"depth": 1, "dim": 16, "num_heads": 2}


def test_only_regular_files_are_read_and_only_up_to_the_bound(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FileLimit, match="is not a regular file"):
        read_text(fifo, 100)  # never blocks on the FIFO
    with pytest.raises(FileLimit, match="is not a regular file"):
        read_text("/dev/zero", 100)
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 100 + "0]")
    with pytest.raises(FileLimit, match="over the 100 bytes"):
        read_json(big, max_bytes=100)
    with pytest.raises(FileLimit, match="is a directory"):
        read_text(tmp_path, 100)
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing", 100)


def test_json_and_yaml_keys_twice_nesting_and_non_finite_numbers(tmp_path):
    with pytest.raises(FileLimit, match="key 'a' is given twice"):
        parse_json('{"a": 1, "a": 2}')
    with pytest.raises(FileLimit, match="nests deeper than 32 levels"):
        parse_json("[" * 200_000 + "]" * 200_000)
    with pytest.raises(FileLimit, match="nests deeper than 32 levels"):
        parse_json("[" * 40 + "]" * 40)
    with pytest.raises(FileLimit, match="non-finite number nan"):
        parse_json('{"loss": NaN}')
    assert parse_json('{"loss": NaN}', finite=False)["loss"] != 0  # a diverged run's log
    with pytest.raises(FileLimit, match="non-finite number inf"):
        parse_yaml("paper: .inf")
    with pytest.raises(FileLimit, match=r"f.yaml \(line 3\): is not valid YAML"):
        parse_yaml("a: 1\nb: [\n", "f.yaml")
    (tmp_path / "ok.yaml").write_text("lr: 3e-3\n")
    assert read_yaml(tmp_path / "ok.yaml") == {"lr": 0.003}


def test_a_large_config_is_refused_at_once_by_its_size(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("model_args: {x: [" + "1, " * 1_000_000 + "1]}\n")  # 3 MB
    start = time.perf_counter()
    assert_refused(capsys, ["train", "--config", str(config)],
                   "bytes, over the 262144 bytes lkca reads from such a file", tmp_path)
    assert time.perf_counter() - start < 10  # the size is looked at before a byte is parsed


def test_a_fifo_or_a_device_as_config_is_named_as_such(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.yaml")
    assert_refused(capsys, ["train", "--config", str(tmp_path / "fifo.yaml")],
                   "is not a regular file (a FIFO, device or socket); pass a YAML config file",
                   tmp_path)
    assert_refused(capsys, ["train", "--config", "/dev/zero"],
                   "config file /dev/zero: is not a regular file", tmp_path)


def test_a_deeply_nested_pretrained_record_is_one_line(tmp_path, capsys):
    folder = tmp_path / "p"
    lkca.create_model("vit_lkca_500k", img_size=8, **TINY).save_pretrained(folder)
    (folder / "config.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_refused(capsys, ["eval", "--checkpoint", str(folder), "--device", "cpu"],
                   "config.json: nests deeper than 32 levels; rewrite it with save_pretrained",
                   tmp_path)


def _record(tmp_path, **change):
    folder = tmp_path / "p"
    if not folder.exists():
        lkca.create_model("vit_lkca_500k", img_size=8, **TINY).save_pretrained(folder)
    record = json.loads((folder / "config.json").read_text())
    record.update(change)
    (folder / "config.json").write_text(json.dumps(record))
    return folder


def test_damaged_pretrained_records_are_one_line(tmp_path, capsys):
    argv = ["eval", "--checkpoint", str(tmp_path / "p"), "--device", "cpu"]
    _record(tmp_path, img_size=[8])
    assert_refused(capsys, argv, "invalid img_size (a list of 1, expected a size or [height, "
                   "width])", tmp_path)
    _record(tmp_path, img_size=8, schema_version=1.5)
    assert_refused(capsys, argv, "has metadata schema_version 1.5, not a version lkca writes",
                   tmp_path)
    record = json.loads((tmp_path / "p" / "config.json").read_text())
    old = {k: v for k, v in record.items() if k not in ("schema_version", "model_args", "task")}
    (tmp_path / "p" / "config.json").write_text(json.dumps({**old, "overrides": {"in_chans": "x"}}))
    assert_refused(capsys, argv, f"{tmp_path / 'p' / 'config.json'} has an invalid in_chans (x)",
                   tmp_path)


def test_a_record_of_a_huge_model_is_refused_before_it_is_built(tmp_path, capsys):
    """depth 100000 beside real 1-block weights: counted on the meta device, nothing allocated."""
    folder = _record(tmp_path)
    record = json.loads((folder / "config.json").read_text())
    record["model_args"] = {**record["model_args"], "depth": 100_000, "dim": 258, "num_heads": 3}
    (folder / "config.json").write_text(json.dumps(record))
    start = time.perf_counter()
    assert_refused(capsys, ["eval", "--checkpoint", str(folder), "--device", "cpu"],
                   "model_args.depth 100000 is over the 1000 blocks lkca builds", tmp_path)
    assert time.perf_counter() - start < 30


def test_a_record_is_checked_against_its_weights_before_the_model_is_built(tmp_path, capsys,
                                                                           monkeypatch):
    """depth 600 beside real 1-block weights: under the size bound (about 480M parameters), so
    only the weights' shapes tell; the model is built on the meta device alone, never on the CPU."""
    folder = _record(tmp_path)
    record = json.loads((folder / "config.json").read_text())
    record["model_args"] = {**record["model_args"], "depth": 600, "dim": 258, "num_heads": 3}
    (folder / "config.json").write_text(json.dumps(record))
    devices = []
    build = lkca.pretrained.build_model

    def watched(*args, **kwargs):
        devices.append(torch.get_default_device().type)
        return build(*args, **kwargs)

    monkeypatch.setattr(lkca.pretrained, "build_model", watched)
    assert_refused(capsys, ["eval", "--checkpoint", str(folder), "--device", "cpu"],
                   "does not fit this model (missing blocks.1.", tmp_path)
    assert devices and set(devices) == {"meta"}
