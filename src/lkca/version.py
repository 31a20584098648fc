"""The version of this lkca, stamped into every checkpoint and pretrained folder (the one place
it is written: pyproject.toml reads it from here), and how a message names the version of an
old file."""

__version__ = "0.2.0"


def older_lkca(written_by: object = None) -> str:
    """The lkca that wrote an old file, for a message: ``"lkca 0.1.0"`` from the version its
    record names, else (none recorded, or this very version, which a file of the old format
    cannot come from) ``"an lkca before 0.2.0"``; never the running version alone."""
    if isinstance(written_by, str) and written_by and written_by != __version__ and len(written_by) <= 40:
        return f"lkca {written_by}"
    return f"an lkca before {__version__}"
