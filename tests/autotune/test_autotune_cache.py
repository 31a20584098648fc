"""Reading the autotune cache: a file that is not exactly what lkca writes (wrong types, a FIFO,
a link to /dev/zero, nesting past the bound) is ignored with one warning naming the file, never
hangs or fails the run, and is replaced atomically by the next write."""

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


BAD = {
    "ms a number": _cache({"impl": "conv", "ms": 5}),
    "ms a string": _cache({"impl": "conv", "ms": "abc"}),
    "ms not finite": _cache({"impl": "conv", "ms": {"conv": float("nan")}}),
    "impl a number": _cache({"impl": 3, "ms": {}}),
    "a key twice": f'{{"format": "{FORMAT}", "format": "{FORMAT}", "machines": {{}}}}',
    "nested 200,000 deep": "[" * 200_000 + "]" * 200_000,
}


@pytest.mark.parametrize("content", list(BAD.values()), ids=list(BAD))
def test_a_cache_not_as_lkca_writes_it_is_ignored_naming_the_file(tmp_path, content):
    path = tmp_path / "autotune.json"
    path.write_text(content)
    cache = DiskCache()
    cache.set_path(path)
    with pytest.warns(AutotuneWarning, match=f"LKCA autotune cache {path}: ignored") as caught:
        assert cache.load(MACHINE) == {}
        assert cache.load(MACHINE) == {}
    assert len(caught) == 1
    cache.save(MACHINE, KEY, {"impl": "conv", "ms": {"conv": 1.5}})  # replaced atomically
    assert json.loads(path.read_text())["machines"] == {MACHINE: {KEY: {"impl": "conv",
                                                                         "ms": {"conv": 1.5}}}}


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_fifo_or_a_device_never_hangs_the_run(fresh_autotune, kind):
    if kind == "fifo":
        os.mkfifo(fresh_autotune)
    else:
        os.symlink("/dev/zero", fresh_autotune)
    with pytest.warns(AutotuneWarning, match="is not a regular file") as caught:
        module = lkca.LKCA(16, 2, (4, 4))
        module(torch.randn(2, 16, 16))  # chooses an implementation: reads, then writes the cache
    assert len(caught) == 1
    assert not fresh_autotune.is_symlink() and fresh_autotune.is_file()  # the link replaced
    assert json.loads(fresh_autotune.read_text())["format"] == FORMAT
    assert os.path.exists("/dev/zero")
