"""Reading the autotune cache: a file that is not exactly what lkca writes (wrong types, a FIFO,
a link to /dev/zero, nesting past the bound) is ignored with one warning naming the file and never
hangs or fails the run. Only a cache lkca wrote is replaced by the next write or deleted by
``lkca autotune --clear``: anything else at the path (a file of other content, a folder, a
device node, a FIFO, a link) is left exactly as it is."""

from __future__ import annotations

import json
import os

import pytest
import torch

import lkca
from lkca.autotune.cache import FORMAT, DiskCache, machine_name
from lkca.autotune.tuner import AutotuneWarning

MACHINE = machine_name(torch.device("cpu"))
KEY = "cpu float32 train B2 C16 h2 g4x4 k7x7"


def _cache(entry) -> str:
    return json.dumps({"format": FORMAT, "machines": {MACHINE: {KEY: entry}}})


# entries lkca would not write, in a file that says it is an lkca cache: replaced by the next save
BAD_ENTRIES = {
    "ms a number": _cache({"impl": "conv", "ms": 5}),
    "ms a string": _cache({"impl": "conv", "ms": "abc"}),
    "impl a number": _cache({"impl": 3, "ms": {}}),
}
# not an lkca cache at all: never replaced
FOREIGN = {
    "ms not finite": _cache({"impl": "conv", "ms": {"conv": float("nan")}}),  # NaN: not JSON
    "a key twice": f'{{"format": "{FORMAT}", "format": "{FORMAT}", "machines": {{}}}}',
    "nested 200,000 deep": "[" * 200_000 + "]" * 200_000,
    "notes": "my notes, not a cache\n",
}


@pytest.mark.parametrize("content", [*BAD_ENTRIES.values(), *FOREIGN.values()],
                         ids=[*BAD_ENTRIES, *FOREIGN])
def test_a_cache_not_as_lkca_writes_it_is_ignored_naming_the_file(tmp_path, content):
    path = tmp_path / "autotune.json"
    path.write_text(content)
    cache = DiskCache()
    cache.set_path(path)
    with pytest.warns(AutotuneWarning, match=f"LKCA autotune cache {path}: ignored") as caught:
        assert cache.load(MACHINE) == {}
        assert cache.load(MACHINE) == {}
        cache.save(MACHINE, KEY, {"impl": "conv", "ms": {"conv": 1.5}})
    assert len(caught) == 1
    if content in FOREIGN.values():
        assert path.read_text() == content  # not lkca's file: left as it is
    else:
        assert json.loads(path.read_text())["machines"] == {MACHINE: {KEY: {"impl": "conv",
                                                                             "ms": {"conv": 1.5}}}}


def _special(path, kind):
    """Make ``path`` a FIFO, a link to /dev/zero, a device node (/dev/null's numbers) or a folder."""
    import stat

    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to /dev/zero":
        os.symlink("/dev/zero", path)
    elif kind == "device node":
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")
    else:
        path.mkdir()


def _same(path, kind) -> bool:
    import stat

    mode = os.lstat(path).st_mode
    return {"fifo": stat.S_ISFIFO, "link to /dev/zero": stat.S_ISLNK,
            "device node": stat.S_ISCHR, "folder": stat.S_ISDIR}[kind](mode)


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "device node", "folder"])
def test_a_fifo_or_a_device_never_hangs_the_run_and_is_left_as_it_is(fresh_autotune, kind):
    _special(fresh_autotune, kind)
    with pytest.warns(AutotuneWarning, match="ignored, cannot be read") as caught:
        module = lkca.LKCA(16, 2, (4, 4))
        module(torch.randn(2, 16, 16))  # chooses an implementation: reads, then would write
    assert len(caught) == 1
    assert _same(fresh_autotune, kind)  # never replaced by a JSON file
    assert os.path.exists("/dev/zero")


@pytest.mark.parametrize("kind", ["notes", "fifo", "link to /dev/zero", "device node", "folder"])
def test_autotune_clear_deletes_only_a_cache_lkca_wrote(fresh_autotune, kind, capsys):
    from tests.tiny_train import assert_refused

    if kind == "notes":
        fresh_autotune.write_text("my notes\n")
    else:
        _special(fresh_autotune, kind)
    import warnings

    with warnings.catch_warnings():  # the refusal is the only line: no warning read first
        warnings.simplefilter("error", AutotuneWarning)
        assert_refused(capsys, ["autotune", "--clear"],
                       "lkca deletes only its own autotune cache", fresh_autotune.parent)
    assert _same(fresh_autotune, kind) if kind != "notes" else fresh_autotune.is_file()


def test_autotune_clear_on_a_read_only_folder_is_one_line(fresh_autotune, capsys, monkeypatch):
    import errno
    from pathlib import Path

    from tests.tiny_train import assert_refused

    fresh_autotune.write_text(_cache({"impl": "conv", "ms": {"conv": 1.0}}))

    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", read_only)  # what a read-only mount answers
    assert_refused(capsys, ["autotune", "--clear"], "Read-only file system", fresh_autotune.parent)


def test_autotune_clear_deletes_the_cache(fresh_autotune, capsys):
    from lkca.cli import main

    fresh_autotune.write_text(_cache({"impl": "conv", "ms": {"conv": 1.0}}))
    assert main(["autotune", "--clear"]) == 0
    assert not fresh_autotune.exists()
    assert main(["autotune", "--clear"]) == 0  # nothing to clear: nothing to do


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    from pathlib import Path

    from lkca.autotune.cache import default_path

    monkeypatch.delenv("LKCA_AUTOTUNE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert default_path() == Path.home() / ".cache" / "lkca" / "autotune.json"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "lkca" / "autotune.json"
