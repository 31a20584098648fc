"""Models: the ViT / ViT-LKCA family, the comparison models (``baselines``), the registry, and
``profile`` (params and MACs of any module)."""

from lkca.models.registry import (
    create_model,
    is_baseline,
    legacy_model,
    list_models,
    model_aliases,
    paper_figures,
    register_model,
)
from lkca.models.vit import VisionTransformer, ViTConfig

__all__ = [
    "VisionTransformer", "ViTConfig", "create_model", "is_baseline", "legacy_model", "list_models",
    "model_aliases", "paper_figures", "register_model",
]
