"""Checkpoints and pretrained folders on disk: atomic file writes and safe reads
(:mod:`~lkca.checkpoint.files`), the metadata record every file carries
(:mod:`~lkca.checkpoint.metadata`) and the pretrained folder writer
(:mod:`~lkca.checkpoint.pretrained_dir`). Nothing here builds a model, so models may use it;
loading, which builds models, is :mod:`lkca.pretrained` (docs/design.md)."""
