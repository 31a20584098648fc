"""The registry choice and the two registered modules (see :mod:`lkca.mmseg`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

try:
    from mmengine.model import BaseModule
    from mmengine.registry import MODELS as MMENGINE_MODELS
    from mmengine.registry import Registry
except ModuleNotFoundError as err:  # pragma: no cover - exercised without the extra
    raise ModuleNotFoundError(
        f"lkca.mmseg needs mmengine ({err}); install it with pip install 'lkca[mmseg]'"
    ) from None

from lkca.seg.backbone import create_backbone
from lkca.seg.neck import MultiLevelNeck


def _models_registry() -> tuple[Registry, bool]:
    try:
        from mmseg.registry import MODELS as MMSEG_MODELS
    except ModuleNotFoundError:  # MMSegmentation absent: the same name and scope, under mmengine's root
        return Registry("model", parent=MMENGINE_MODELS, scope="mmseg", locations=["lkca.mmseg"]), False
    return MMSEG_MODELS, True


MODELS, USING_MMSEG = _models_registry()


@MODELS.register_module()
class LKCAViTBackbone(BaseModule):
    """ViT-S (``arch="vit_s_seg"``) or LKCA-S (``arch="lkca_s_seg"``) as an MMSegmentation backbone.

    ``forward(images)`` (B, 3, H, W), H and W multiples of the patch (16) -> a tuple of
    ``len(out_indices)`` maps (B, 384, H / 16, W / 16), read after blocks (2, 5, 8, 11), the last
    one after the final LayerNorm: :class:`lkca.seg.backbone.ViTBackbone`, unchanged. Other
    keywords override its :class:`~lkca.models.vit.ViTConfig` (``img_size``, ``dim``, ``depth``,
    ``num_heads``, ``drop_path_rate``, ``lkca_impl`` ...); ``init_cfg`` is mmengine's.
    """

    def __init__(self, arch: str = "lkca_s_seg", out_indices: Sequence[int] | None = None,
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
                 **overrides: Any) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = create_backbone(arch, out_indices=out_indices, **overrides)
        self.out_channels = self.backbone.out_channels

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.backbone(images))


@MODELS.register_module()
class LKCAMultiLevelNeck(BaseModule):
    """lkca's multi-level neck (:class:`lkca.seg.neck.MultiLevelNeck`): four stride-16 maps ->
    strides 4, 8, 16, 32. ``resample="bilinear"`` (the default, as ``lkca seg``'s) equals
    MMSegmentation's own ``MultiLevelNeck``; ``"deconv"`` is the transposed-conv option."""

    def __init__(self, in_channels: Sequence[int], out_channels: int,
                 scales: Sequence[float] = (4, 2, 1, 0.5), resample: str = "bilinear",
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.neck = MultiLevelNeck(list(in_channels), out_channels, tuple(scales), resample)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(self.neck(list(feats)))
