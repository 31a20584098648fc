"""``lkca train --compile`` keeps inductor's cache under lkca's cache directory, not in the
system's temporary folder, and a TORCHINDUCTOR_CACHE_DIR of the user's wins."""

import os

from lkca.runtime.compile_cache import ENV, use_inductor_cache


def test_inductor_cache_goes_under_lkcas_cache_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert use_inductor_cache() == tmp_path / "xdg" / "lkca" / "inductor"
    assert os.environ[ENV] == str(tmp_path / "xdg" / "lkca" / "inductor")
    monkeypatch.delenv(ENV)
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert use_inductor_cache() == tmp_path / "home" / ".cache" / "lkca" / "inductor"


def test_the_users_inductor_cache_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "mine"))
    assert use_inductor_cache() == tmp_path / "mine" and os.environ[ENV] == str(tmp_path / "mine")


def test_inductor_reads_the_folder_set(tmp_path, monkeypatch):
    """The folder inductor itself uses is the one set (it reads the variable when it compiles)."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == str(use_inductor_cache())
