"""How every benchmark script ends: a user's mistake as one line on stderr and exit code 2.

Each script that takes arguments ends with

    if __name__ == "__main__":
        from script_errors import run_script  # beside the script: benchmarks/ is sys.path[0]

        run_script(main)

A mistake the user can fix (an :class:`lkca.errors.UserError` from lkca: a device this machine
lacks, a data set that is not where ``--data-dir`` says; or a script's own
``raise SystemExit("message")``) prints ``<script>: error: <message>`` on one line, with no
traceback, and exits with code 2, as ``lkca`` commands do (docs/errors.md). Under torchrun
(``RANK`` in the environment) only rank 0 prints; every other rank exits with the same code
quietly, so the line appears once (torchrun then adds its own report of the failed ranks).
Ctrl-C ends with ``interrupted`` and code 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from lkca.errors import UserError

MESSAGE_LIMIT = 1000  # characters of one message (a bound on what it quotes)


def one_line(message: object) -> str:
    """``message`` on one line, at most ``MESSAGE_LIMIT`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def run_script(main: Callable[[], int | None], name: str | None = None) -> NoReturn:
    """``sys.exit(main())``, with the user's mistakes ended as the module docstring says;
    ``name``: the script named in the message (default: ``sys.argv[0]``'s file name)."""
    name = name or os.path.basename(sys.argv[0])
    try:
        code = main()
    except UserError as err:
        _fail(name, err, 2)
    except SystemExit as err:
        if not isinstance(err.code, str):  # sys.exit(N), argparse's exit: as it is
            raise
        _fail(name, err.code, 2)
    except KeyboardInterrupt:
        _fail(name, "interrupted", 130)
    sys.exit(code or 0)


def _fail(name: str, message: object, code: int) -> NoReturn:
    if os.environ.get("RANK", "0") == "0":
        print(f"{name}: error: {one_line(message)}", file=sys.stderr, flush=True)
    sys.exit(code)
