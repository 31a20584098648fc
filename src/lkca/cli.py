"""The ``lkca`` command line (also ``python -m lkca``).

Every command group lives beside its code in a ``commands`` module whose ``add_parsers(sub)``
adds its sub-commands, each with ``set_defaults(func=...)``; a new group joins with one line in
:data:`COMMAND_GROUPS`. Building the parser imports every group's module, so those import their
engines (and PIL) only inside the commands that use them. Every user mistake ends with
one line on stderr naming the problem and the fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Sequence

# The command groups' modules, in help order: train, eval; seg; profile, list, erf, kernels, plot,
# tables; data; export; reproduce; autotune.
COMMAND_GROUPS = (
    "lkca.train.commands",
    "lkca.seg.commands",
    "lkca.analysis.commands",
    "lkca.data.commands",
    "lkca.export.commands",
    "lkca.reproduce.commands",
    "lkca.autotune.commands",
)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a mistake in the arguments ends with one line on stderr naming it
    and where the options are listed (not the whole usage block), and exit code 2. Sub-command
    parsers are of this class too (``add_subparsers`` builds them with the parent's class)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {_one_line(message)}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)


# `lkca --help` and `lkca train --help` end with this (README.md, "Where lkca writes")
OUTSIDE_THE_RUN = (
    "Outside the run folder (--out) lkca writes only three caches: the timings of LKCA's "
    "impl=auto in ~/.cache/lkca/autotune.json ($XDG_CACHE_HOME/lkca when set; "
    "LKCA_AUTOTUNE_CACHE=FILE moves it, empty keeps it in memory), a paper data set's decoded "
    ".npz in DIR/.lkca_cache/ (else $LKCA_CACHE_DIR, else ~/.cache/lkca) and, with --compile, "
    "inductor's kernels in ~/.cache/lkca/inductor (a TORCHINDUCTOR_CACHE_DIR you set is kept)."
)


def build_parser() -> argparse.ArgumentParser:
    """The ``lkca`` parser with every command group's sub-commands."""
    # the module docstring's first line without its reST markup (``lkca`` -> lkca)
    description = __doc__.splitlines()[0].replace("``", "")
    parser = _Parser(prog="lkca", description=description, epilog=OUTSIDE_THE_RUN)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_GROUPS:
        importlib.import_module(name).add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, turn user mistakes into one clear line and exit code 2.

    A command returns None (exit code 0) or its exit code (``lkca list`` with no match: 1). When
    the reader of stdout goes away (``lkca list --aliases | head -1``) the command ends quietly
    with exit code 1, for every command, with no traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except ValueError as err:  # UserError and the ValueErrors raised at API boundaries
        print(f"lkca {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lkca {args.command}: interrupted", file=sys.stderr)
        return 130
    return code or 0


def _silence_stdout() -> None:
    """Point stdout at devnull, so the interpreter's final flush of what is still buffered does not
    raise a second BrokenPipeError (the recipe of Python's documentation of SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout replaced (tests): no descriptor
        pass


def _one_line(err: BaseException | str, limit: int = 1000) -> str:
    """The message on one line, at most ``limit`` characters (a bound on anything it quotes)."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
