"""Analysis: params/MACs profiling (and, later, receptive fields, plots, tables)."""

from lkca.analysis.profile import count_params, profile

__all__ = ["profile", "count_params"]
