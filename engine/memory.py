"""Memory presets: how much of HoloCine lives on the GPU, chosen by name or by the card's free memory.

The real model is two ~28 GB bf16 experts plus an ~11 GB umT5-XXL and the VAE.
- high: everything resident in bf16 (an 80 GB card).
- balanced: diffusers' model CPU offload: one component on the GPU at a time, in
  `model_cpu_offload_seq` order, so the text encoder leaves after encoding and at most one
  expert is ever resident.
- low: diffusers' block-level group offload with CUDA-stream prefetch, weights stored in
  fp8 and computed in bf16 (diffusers' layerwise casting), and a tiled VAE: the 24 GB mode.
Offloading moves the same weights; it does not change a single result. fp8 storage does
(each weight rounds to 3 mantissa bits), within the tolerance the tests state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .errors import WeightsError

MemoryMode = Literal["auto", "high", "balanced", "low"]
MEMORY_MODES: tuple[MemoryMode, ...] = ("auto", "high", "balanced", "low")
Offload = Literal["none", "model", "group"]
GIB = 1024**3
# Free memory `auto` needs for each mode at the real size (480x832, 241 frames, 6 shots). The
# DiT peaks come from benchmarks/gpu.py on an H200 (README, "GPU"): high 63.3 GiB with both
# experts resident, balanced 36.8 GiB with one.
HIGH_MIN_FREE = 75 * GIB  # 63.3 GiB + the resident umT5 encoder (10.6 GiB) + 1 GiB headroom
BALANCED_MIN_FREE = 40 * GIB  # 36.8 GiB + allocator fragmentation headroom
FP8 = torch.float8_e4m3fn
# Modules whose weights stay in the compute dtype under fp8 storage: diffusers' own skip list
# for Wan (patch/text/time embeddings, norms) plus the output projection, as diffusers' docs advise.
FP8_SKIP_PATTERNS = ("patch_embedding", "condition_embedder", "norm", "proj_out", "scale_shift_table")


@dataclass(frozen=True)
class MemoryPlan:
    """What a preset means on this device, and why `auto` chose it."""

    mode: MemoryMode
    offload: Offload
    fp8_weights: bool
    reason: str

    def to_dict(self) -> dict:
        return {"mode": self.mode, "offload": self.offload, "fp8_weights": self.fp8_weights, "reason": self.reason}


def free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device, None elsewhere."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def plan_memory(mode: MemoryMode, device: torch.device, free_bytes: int | None = None) -> MemoryPlan:
    """Resolve a preset for `device`; `auto` picks the fastest mode the free memory allows."""
    if mode not in MEMORY_MODES:
        raise WeightsError(f"memory: must be one of {', '.join(MEMORY_MODES)}, got {mode!r}")
    reason = "asked for"
    if mode == "auto":
        if device.type != "cuda":
            mode, reason = "high", f"{device.type}: no GPU memory to save"
        else:
            free = free_bytes if free_bytes is not None else free_memory(device)
            assert free is not None
            mode = "high" if free >= HIGH_MIN_FREE else "balanced" if free >= BALANCED_MIN_FREE else "low"
            reason = f"auto: {free / GIB:.1f} GiB free on {device}"
    offload: Offload = {"high": "none", "balanced": "model", "low": "group"}[mode]  # type: ignore[assignment]
    return MemoryPlan(mode, offload, fp8_weights=mode == "low", reason=reason)


def apply_memory_plan(pipe, plan: MemoryPlan, device: torch.device) -> None:
    """Place `pipe` on `device` as `plan` says (call once, right after loading)."""
    if plan.fp8_weights:
        compute = next(pipe.transformer.parameters()).dtype
        for expert in (pipe.transformer, pipe.transformer_2):
            if expert is not None:
                expert.enable_layerwise_casting(
                    storage_dtype=FP8, compute_dtype=compute, skip_modules_pattern=FP8_SKIP_PATTERNS
                )
    if plan.offload == "none":
        pipe.to(device)
    elif plan.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_group_offload(
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=device.type == "cuda",
        )


def peak_memory(device: torch.device) -> int | None:
    """Peak bytes allocated on a CUDA device since the last reset; None elsewhere."""
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
