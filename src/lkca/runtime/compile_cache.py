"""Where ``torch.compile`` (``lkca train --compile``) keeps its compiled kernels: inductor's
cache, by default a folder of the system's temporary directory (``/tmp/torchinductor_$USER``),
goes under lkca's cache directory instead, beside the autotune timings: ``$XDG_CACHE_HOME/lkca/
inductor`` (``~/.cache/lkca/inductor``). A ``TORCHINDUCTOR_CACHE_DIR`` the user set is kept
(README.md, "Where lkca writes")."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "TORCHINDUCTOR_CACHE_DIR"  # read by inductor when it compiles


def use_inductor_cache() -> Path:
    """Point inductor's cache at lkca's cache directory unless ``$TORCHINDUCTOR_CACHE_DIR`` is
    set; the folder in use."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "lkca" / "inductor"
    os.environ[ENV] = str(folder)
    return folder


__all__ = ["use_inductor_cache"]
