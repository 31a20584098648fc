"""Error types for user mistakes.

Every user-facing failure raises a subclass of :class:`UserError` (itself a ``ValueError``) whose
message is one line naming the problem and the fix. The command line prints that line and exits
non-zero without a traceback.
"""


class UserError(ValueError):
    """A mistake the user can fix; the message says what is wrong and how to fix it."""


class DataFormatError(UserError):
    """A data file is missing, truncated or not in the expected on-disk layout."""


class ConfigError(UserError):
    """A configuration key or value is invalid."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, or belongs to another model."""


class AuthorsLayoutError(CheckpointError):
    """A state dict is not the LKCA authors' layout of the model family it was given as."""


class InvalidArgumentError(UserError):
    """An argument of a public function or constructor is invalid (``lkca.LKCA(...)``,
    ``lkca.create_model`` with an unknown name, ``lkca.profile`` with an image size the model
    cannot take)."""


class OutputError(UserError):
    """A file lkca writes cannot be written there: the disk is full or read-only, the target is a
    folder, device or FIFO, or it is a file the command may not replace (docs/errors.md)."""
