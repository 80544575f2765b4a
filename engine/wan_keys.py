"""Rename a diffusers `WanTransformer3DModel` state dict to the original Wan key naming.

Real HoloCine DiT checkpoints ship in the original Wan naming (`blocks.N.self_attn.q.weight`)
and the engine loads them through diffusers' own converter (`from_single_file`). The tiny
test checkpoint must ship the same way, so its DiT files are written from diffusers models
through this module: the inverse of `convert_wan_transformer_to_diffusers`, for the
text-to-video keys only. The table is explicit and every key must match exactly one rule,
so a diffusers upgrade that adds or renames a parameter fails loudly instead of writing a
checkpoint the real loader would silently reject or half-load.
"""

from __future__ import annotations

import re

import torch

_ATTN = {"attn1": "self_attn", "attn2": "cross_attn"}
_ATTN_PROJ = {"to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "o", "norm_q": "norm_q", "norm_k": "norm_k"}
_TOP_LEVEL = {
    "patch_embedding": "patch_embedding",
    "condition_embedder.time_embedder.linear_1": "time_embedding.0",
    "condition_embedder.time_embedder.linear_2": "time_embedding.2",
    "condition_embedder.text_embedder.linear_1": "text_embedding.0",
    "condition_embedder.text_embedder.linear_2": "text_embedding.2",
    "condition_embedder.time_proj": "time_projection.1",
    "proj_out": "head.head",
}
# Inside a block; diffusers' norm2 is the affine cross-attention norm, which Wan calls norm3.
_BLOCK_MODULES = {
    "norm2": "norm3",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
}

_TOP_LEVEL_RE = re.compile(r"(?P<module>[a-z_.0-9]+?)\.(?P<param>weight|bias)")
_BLOCK_RE = re.compile(r"blocks\.(?P<index>\d+)\.(?P<rest>.+)")
_BLOCK_PARAM_RE = re.compile(r"(?P<module>.+)\.(?P<param>weight|bias)")
_ATTN_RE = re.compile(r"(?P<attn>attn[12])\.(?P<proj>to_q|to_k|to_v|to_out\.0|norm_q|norm_k)")


def _block_key(index: str, rest: str) -> str | None:
    """Original name of the per-block parameter `rest` of block `index`, or None if unknown."""
    if rest == "scale_shift_table":
        return f"blocks.{index}.modulation"
    param_match = _BLOCK_PARAM_RE.fullmatch(rest)
    if param_match is None:
        return None
    module, param = param_match["module"], param_match["param"]
    attn_match = _ATTN_RE.fullmatch(module)
    if attn_match is not None:
        return f"blocks.{index}.{_ATTN[attn_match['attn']]}.{_ATTN_PROJ[attn_match['proj']]}.{param}"
    if module in _BLOCK_MODULES:
        return f"blocks.{index}.{_BLOCK_MODULES[module]}.{param}"
    return None


def original_wan_key(key: str) -> str:
    """Original Wan name of one diffusers T2V transformer key; ValueError if it has none."""
    if key == "scale_shift_table":
        return "head.modulation"
    block_match = _BLOCK_RE.fullmatch(key)
    if block_match is not None:
        renamed = _block_key(block_match["index"], block_match["rest"])
    else:
        top_match = _TOP_LEVEL_RE.fullmatch(key)
        module = top_match["module"] if top_match else None
        renamed = f"{_TOP_LEVEL[module]}.{top_match['param']}" if module in _TOP_LEVEL else None
    if renamed is None:
        raise ValueError(
            f"No original Wan name for diffusers transformer key {key!r}: only text-to-video "
            "Wan keys are supported; extend engine/wan_keys.py if diffusers added a parameter."
        )
    return renamed


def to_original_wan_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return `state_dict` renamed to original Wan keys, every tensor made contiguous.

    Contiguity matters because safetensors refuses to save non-contiguous tensors.
    """
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        new_key = original_wan_key(key)
        if new_key in renamed:
            raise ValueError(f"Two diffusers keys map to the original Wan key {new_key!r}; the last was {key!r}.")
        renamed[new_key] = tensor.contiguous()
    return renamed
