"""Run ``lkca ARGV`` in a subprocess under an address-space cap (``RLIMIT_AS``), so a reader
that would allocate what a hostile file claims fails fast in the test instead of taking the
machine's memory."""

from __future__ import annotations

import subprocess
import sys

CAP_BYTES = 6 * 2**30  # torch's import maps ~2 GiB of address space; a refusal needs no more

_CODE = """import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
from lkca.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_capped(argv: list[str], cwd, cap: int = CAP_BYTES, timeout: float = 120
               ) -> subprocess.CompletedProcess[str]:
    """``lkca ARGV`` under ``cap`` bytes of address space, in ``cwd``; its exit code, stdout and
    stderr (text)."""
    return subprocess.run([sys.executable, "-c", _CODE, str(cap), *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_refused_capped(argv: list[str], expected: str, root, cap: int = CAP_BYTES) -> str:
    """:func:`run_capped`: exit code 2, one stderr line containing ``expected``, no traceback,
    every file under ``root`` as it was (tiny_train.snapshot)."""
    from tiny_train import snapshot

    before = snapshot(root)
    proc = run_capped(argv, cwd=root, cap=cap)
    err = proc.stderr
    assert proc.returncode == 2, err[-3000:]
    assert err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    assert expected in err, err
    assert snapshot(root) == before, err
    return err
