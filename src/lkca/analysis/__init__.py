"""Analysis: params/MACs profiling, effective receptive fields, plots and the paper's tables."""

from lkca.analysis.profile import count_params, profile

__all__ = ["profile", "count_params"]
