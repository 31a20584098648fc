"""Building blocks: one per file (token mixers, MLP, stochastic depth, patch/position embedding,
the pre-LN residual block, initialisation schemes)."""

from lkca.layers.attention import Attention
from lkca.layers.drop_path import DropPath, drop_path_rates
from lkca.layers.lka import LKA
from lkca.layers.lkca import LKCA, global_kernel_size, toeplitz_matrix
from lkca.layers.mlp import Mlp
from lkca.layers.patch_embed import PatchEmbed
from lkca.layers.pos_embed import PosEmbed
from lkca.layers.prenorm_block import PreNormBlock

__all__ = [
    "LKCA", "Attention", "LKA", "Mlp", "DropPath", "PatchEmbed", "PosEmbed", "PreNormBlock",
    "drop_path_rates", "global_kernel_size", "toeplitz_matrix",
]
