"""``lkca autotune``: what ``impl="auto"`` chose on this machine (the autotune cache), one line
per shape, and ``--clear`` to have every shape timed again (docs/benchmarks.md, "How auto
chooses").

The CLI imports every command module to build its parser; this one needs only the cache code.
"""

from __future__ import annotations

import argparse

from lkca.autotune.record import summary
from lkca.autotune.tuner import autotune_cache_entries, autotune_cache_path, clear_autotune_cache


def _cmd_autotune(args: argparse.Namespace) -> None:
    path = autotune_cache_path()
    if path is None:
        print("lkca autotune: no cache file (LKCA_AUTOTUNE_CACHE is empty): choices stay in memory")
        return
    if args.clear:  # first: a path that is not lkca's cache is refused before it is read
        count = clear_autotune_cache()
        print(f"cleared {path} ({count} {'shape' if count == 1 else 'shapes'}): every shape is "
              "timed again on its first use")
        return
    machines = autotune_cache_entries()
    count = sum(len(entries) for entries in machines.values())
    print(f"{path}: {count} {'shape' if count == 1 else 'shapes'}")
    for machine in sorted(machines):
        print(machine)
        for key in sorted(machines[machine]):
            print(f"  {summary(key, machines[machine][key])}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``autotune`` command."""
    p = sub.add_parser("autotune", help="show or clear what impl='auto' chose on this machine")
    p.set_defaults(func=_cmd_autotune)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--show", action="store_true",
                       help="one line per shape: the choice, each candidate's time, the load (default)")
    group.add_argument("--clear", action="store_true",
                       help="delete the cache file: every shape is timed again on its first use")
