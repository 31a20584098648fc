"""Checkpoints and pretrained folders on disk: their bytes, written through
:mod:`lkca.atomic_files` and read safely (:mod:`~lkca.checkpoint.files`), the metadata
record every file carries (:mod:`~lkca.checkpoint.metadata`) and the pretrained folder writer
(:mod:`~lkca.checkpoint.pretrained_dir`). Nothing here builds a model, so models may use it;
loading, which builds models, is :mod:`lkca.pretrained` (docs/design.md)."""
