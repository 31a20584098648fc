"""The config language on the command line: ``--config YAML``, short flags and ``--set``."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from lkca.config.overrides import parse_overrides


def add_config_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """Add ``--config`` (``example``: a config file to show in the help) and ``--set``."""
    parser.add_argument("--config", help=f"YAML config, e.g. {example}")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="set any config field, after the file and the flags: values are YAML, "
                             "dots reach into mappings, e.g. --set lr=3e-3 model_args.depth=6")


def config_overrides(args: argparse.Namespace, flags: Iterable[str]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the short ``flags`` given, by config field; the ``--set`` values), for a config builder."""
    given = {name: getattr(args, name) for name in flags}
    if getattr(args, "no_progress", False):
        given["progress"] = False
    return given, parse_overrides(args.set)
