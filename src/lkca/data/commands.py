"""``lkca data ...``: preparing data sets on disk (lkca never downloads).

The CLI imports every command module to build its parser; the archive reader is light.
"""

from __future__ import annotations

import argparse

from lkca.data.archive import safe_extract


def _cmd_extract(args: argparse.Namespace) -> None:
    names = safe_extract(args.archive, args.to)
    print(f"extracted {len(names)} members of {args.archive} into {args.to}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command with its ``extract`` sub-command."""
    data = sub.add_parser("data", help="prepare data sets on disk")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser(
        "extract", help="unpack a downloaded archive (.tar, .tar.gz, .tgz, .zip), refusing members "
        "that would land outside the target (path traversal)")
    p.add_argument("archive", help="the archive as downloaded, e.g. cifar-10-python.tar.gz")
    p.add_argument("--to", required=True, help="data directory to pass later as --data-dir")
    p.set_defaults(func=_cmd_extract)
