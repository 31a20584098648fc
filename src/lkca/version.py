"""The version of this lkca, stamped into every checkpoint and pretrained folder."""

__version__ = "0.1.0"
