"""The training runtime shared by classification (:mod:`lkca.train.engine`) and segmentation
(:mod:`lkca.seg.engine`): device and precision, processes (torchrun / DDP), stop signals, the
non-finite-loss policy, the run directory, checkpoints of the training state, the run log and the
console. :class:`~lkca.runtime.session.Session` puts them together for one run; each task's
engine keeps only its data, model, step and evaluation (docs/design.md)."""
