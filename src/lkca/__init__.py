"""lkca: Large Kernel Convolutional Attention (Li et al., arXiv 2401.05738) for PyTorch."""

from lkca.authors.loader import from_authors_checkpoint
from lkca.autotune.tuner import (
    impl_choices,
    impl_policy,
    pin_impl_choices,
    set_autotune_cache,
    set_impl_policy,
)
from lkca.errors import InvalidArgumentError, UserError
from lkca.layers.lkca import LKCA
from lkca.models.profile import profile
from lkca.models.registry import create_model, list_models
from lkca.models.vit import VisionTransformer
from lkca.pretrained import from_pretrained, save_pretrained
from lkca.seg.segmentor import create_segmentor
from lkca.version import __version__

__all__ = [
    "LKCA",
    "__version__",
    "InvalidArgumentError",
    "UserError",
    "VisionTransformer",
    "create_model",
    "create_segmentor",
    "from_authors_checkpoint",
    "from_pretrained",
    "impl_choices",
    "impl_policy",
    "list_models",
    "pin_impl_choices",
    "profile",
    "save_pretrained",
    "set_autotune_cache",
    "set_impl_policy",
]
