"""HoloCine's two attention patterns, installed at diffusers' attention-processor seam."""

from .context import AttentionMode, ShotAttention, ShotTokenLayout
from .processor import HoloCineAttnProcessor, install_shot_attention
from .sparse import SPARSE_BACKENDS, available_sparse_backends, resolve_sparse_backend

__all__ = [
    "AttentionMode",
    "HoloCineAttnProcessor",
    "SPARSE_BACKENDS",
    "ShotAttention",
    "ShotTokenLayout",
    "available_sparse_backends",
    "install_shot_attention",
    "resolve_sparse_backend",
]
