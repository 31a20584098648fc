"""Analysis: effective receptive fields, plots, the paper's tables and reports (params/MACs are
counted by :mod:`lkca.models.profile`, below the models and engines that use it)."""
