"""Tiny LoRA files for the tiny checkpoint's experts, in diffusers or original Wan keys."""

from __future__ import annotations

from collections.abc import Callable

import torch
from safetensors.torch import save_file

TARGETS = {"attn1.to_q": "self_attn.q", "attn2.to_v": "cross_attn.v", "ffn.net.0.proj": "ffn.0"}
SIZES = {"attn1.to_q": (24, 24), "attn2.to_v": (24, 24), "ffn.net.0.proj": (32, 24)}  # (out, in) of the tiny model


def lora_weights(seed: int, rank: int = 4, width: int | None = None) -> dict[tuple[int, str], tuple]:
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for block in (0, 1):
        for module, (out_features, in_features) in SIZES.items():
            down = torch.randn(rank, width or in_features, generator=g) * 0.5
            up = torch.randn(out_features, rank, generator=g) * 0.5
            weights[(block, module)] = (down, up)
    return weights


def _save(path, weights, module_key: Callable[[int, str], str]) -> str:
    save_file(
        {
            f"{module_key(b, m)}.lora_{part}.weight": tensor
            for (b, m), (down, up) in weights.items()
            for part, tensor in (("A", down), ("B", up))
        },
        str(path),
    )
    return str(path)


def diffusers_file(path, weights) -> str:
    return _save(path, weights, lambda b, m: f"transformer.blocks.{b}.{m}")


def original_file(path, weights) -> str:
    return _save(path, weights, lambda b, m: f"diffusion_model.blocks.{b}.{TARGETS[m]}")
