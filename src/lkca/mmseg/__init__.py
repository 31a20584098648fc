"""MMSegmentation plugin (``pip install 'lkca[mmseg]'``): the ViT-S / LKCA-S backbones of
:mod:`lkca.seg.backbone` and lkca's multi-level neck as MMSegmentation models.

Use it from an MMSegmentation config (see configs/mmseg/)::

    custom_imports = dict(imports=["lkca.mmseg"], allow_failed_imports=False)
    model = dict(backbone=dict(type="LKCAViTBackbone", arch="lkca_s_seg"), ...)

The classes are registered in MMSegmentation's ``MODELS`` registry (scope ``mmseg``) when
MMSegmentation is installed; otherwise in an mmengine registry of the same name and scope, a child
of mmengine's root ``MODELS``, so ``type="LKCAViTBackbone"`` resolves the same way under
``default_scope = "mmseg"`` (:data:`USING_MMSEG` says which). Only mmengine is needed to build
them; training with MMSegmentation needs MMSegmentation and mmcv with its compiled ops, while
``lkca seg`` needs none of this.
"""

from lkca.mmseg.models import MODELS, USING_MMSEG, LKCAMultiLevelNeck, LKCAViTBackbone

__all__ = ["MODELS", "USING_MMSEG", "LKCAMultiLevelNeck", "LKCAViTBackbone"]
