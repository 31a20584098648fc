"""lkca reproduce checks the data of every run still to train before the first one starts: a
missing data set is one line, exit code 2, nothing written, no run started."""

from __future__ import annotations

import pytest
from tiny_train import assert_refused

from lkca.reproduce import child


@pytest.fixture
def no_run_starts(monkeypatch):
    def start(*args, **kwargs):
        raise AssertionError("a run was started")

    monkeypatch.setattr(child, "start", start)


@pytest.mark.parametrize("table, expected", [
    ("1", "cifar-10-batches-py does not exist"),
    ("6", "ADEChallengeData2016 does not exist"),
])
def test_a_missing_data_set_is_refused_before_any_run(tmp_path, capsys, no_run_starts, table,
                                                      expected):
    empty = tmp_path / "data"
    empty.mkdir()
    err = assert_refused(capsys, ["reproduce", "--table", table, "--data-dir", str(empty),
                                  "--runs", str(tmp_path / "runs")], expected, tmp_path)
    runs = 12 if table == "1" else 2
    assert f"(checked before the {runs} run(s) that read it, " in err
    assert err.rstrip().endswith("first: none was started)")
    assert not (tmp_path / "runs").exists()


def test_a_damaged_split_is_found_before_any_run(tmp_path, capsys, no_run_starts):
    data = tmp_path / "data"
    (data / "cifar-10-batches-py").mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (data / "cifar-10-batches-py" / name).write_bytes(b"not a pickle")
    assert_refused(capsys, ["reproduce", "--table", "1", "--data-dir", str(data),
                            "--runs", str(tmp_path / "runs")], "data_batch_1", tmp_path)
