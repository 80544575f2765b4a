"""Sparse inter-shot self-attention, with interchangeable kernels.

Rule (upstream, exact): a query of shot i attends to all tokens of shot i plus the
"summaries" (first latent frame) of ALL shots in order. Shot i's own first frame is thus
in its key set twice, which doubles its softmax weight; every backend reproduces that.

All kernels take and return (batch, tokens, heads, head_dim), the layout of diffusers'
`dispatch_attention_fn`; RoPE has already been applied, so summaries keep their absolute
positions. Given `out` (which may be `q` itself: a query is dead once attended), a kernel
writes its result there instead of allocating, which keeps sparse attention's peak memory
below the dense kernel's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib import import_module

import torch
import torch.nn.functional as F

from ..errors import BackendUnavailableError
from .context import ShotTokenLayout

SparseKernel = Callable[..., torch.Tensor]  # (q, k, v, layout, out=None) -> out


def _into(out: torch.Tensor | None, result: torch.Tensor) -> torch.Tensor:
    if out is None:
        return result
    out.copy_(result)
    return out


def sparse_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ShotTokenLayout, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Dense masked attention with +ln 2 on each query's own summary keys.

    Builds an S x S bias, so it is for tests and small sizes only; it is the executable
    definition the fast kernels are checked against.
    """
    bias = sparse_bias(layout, device=q.device, dtype=q.dtype)
    result = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=bias)
    return _into(out, result.transpose(1, 2))


def sparse_bias(layout: ShotTokenLayout, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(S, S) additive scores bias equivalent to the packed key sets: -inf, 0 or ln 2."""
    n = layout.num_tokens
    bias = torch.full((n, n), float("-inf"), device=device, dtype=dtype)
    for q_start, q_end in layout.shot_ranges:
        bias[q_start:q_end, q_start:q_end] = 0.0
        for s_start, s_end in layout.summary_ranges:
            bias[q_start:q_end, s_start:s_end] = 0.0
        if layout.summaries:  # its own summary is in its key set twice
            own_summary_end = q_start + layout.tokens_per_frame
            bias[q_start:q_end, q_start:own_summary_end] = math.log(2.0)
    return bias


def _packed_keys(x: torch.Tensor, layout: ShotTokenLayout, shot: int, summaries: torch.Tensor) -> torch.Tensor:
    start, end = layout.shot_ranges[shot]
    return torch.cat([x[:, start:end], summaries], dim=1)


def _summaries(x: torch.Tensor, layout: ShotTokenLayout) -> torch.Tensor:
    return torch.cat([x[:, :0], *(x[:, start:end] for start, end in layout.summary_ranges)], dim=1)


def sparse_sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ShotTokenLayout, out: torch.Tensor | None = None
) -> torch.Tensor:
    """One torch SDPA call per shot over its packed key set; never builds an S x S mask.

    Each shot's keys are packed into one reused buffer laid out [all summaries, this
    shot's tokens] (key order does not change attention), and shot i's result is written
    only after shot i's queries were read, so `out` may be `q`.
    """
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return _into(out, _sparse_sdpa_differentiable(q, k, v, layout))
    batch, _, heads, head_dim = q.shape
    summary_len = len(layout.summary_ranges) * layout.tokens_per_frame
    longest = max(end - start for start, end in layout.shot_ranges)
    key_buffer = k.new_empty(batch, summary_len + longest, heads, head_dim)
    value_buffer = v.new_empty(batch, summary_len + longest, heads, head_dim)
    for index, (start, end) in enumerate(layout.summary_ranges):
        slot = slice(index * layout.tokens_per_frame, (index + 1) * layout.tokens_per_frame)
        key_buffer[:, slot] = k[:, start:end]
        value_buffer[:, slot] = v[:, start:end]
    out = torch.empty_like(q) if out is None else out
    for start, end in layout.shot_ranges:
        length = summary_len + end - start
        key_buffer[:, summary_len:length] = k[:, start:end]
        value_buffer[:, summary_len:length] = v[:, start:end]
        shot_out = F.scaled_dot_product_attention(
            q[:, start:end].transpose(1, 2),
            key_buffer[:, :length].transpose(1, 2),
            value_buffer[:, :length].transpose(1, 2),
        )
        out[:, start:end] = shot_out.transpose(1, 2)
    return out


def _sparse_sdpa_differentiable(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ShotTokenLayout
) -> torch.Tensor:
    """`sparse_sdpa` for training: autograd keeps every shot's key set, so each gets its own tensor."""
    k_summaries, v_summaries = _summaries(k, layout), _summaries(v, layout)
    shots = []
    for shot, (start, end) in enumerate(layout.shot_ranges):
        shot_out = F.scaled_dot_product_attention(
            q[:, start:end].transpose(1, 2),
            _packed_keys(k, layout, shot, k_summaries).transpose(1, 2),
            _packed_keys(v, layout, shot, v_summaries).transpose(1, 2),
        )
        shots.append(shot_out.transpose(1, 2))
    return torch.cat(shots, dim=1)


def _flash_varlen() -> Callable | None:
    """flash-attn's varlen kernel: FA3 (Hopper) first, then FA2; None when neither imports."""
    for module_name in ("flash_attn_interface", "flash_attn"):
        try:
            return import_module(module_name).flash_attn_varlen_func
        except (ImportError, AttributeError):
            continue
    return None


def sparse_flash(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ShotTokenLayout, out: torch.Tensor | None = None
) -> torch.Tensor:
    """All shots of all batch items packed into one flash-attn varlen call, as upstream runs it."""
    varlen = _flash_varlen()
    if varlen is None:
        raise BackendUnavailableError("sparse backend 'flash' needs flash-attn: pip install -r requirements-gpu.txt")
    batch = q.shape[0]
    k_summaries, v_summaries = _summaries(k, layout), _summaries(v, layout)
    q_parts, k_parts, v_parts, q_lens, k_lens = [], [], [], [], []
    for b in range(batch):
        for shot, (start, end) in enumerate(layout.shot_ranges):
            q_parts.append(q[b, start:end])
            k_parts.append(_packed_keys(k[b : b + 1], layout, shot, k_summaries[b : b + 1])[0])
            v_parts.append(_packed_keys(v[b : b + 1], layout, shot, v_summaries[b : b + 1])[0])
            q_lens.append(end - start)
            k_lens.append(k_parts[-1].shape[0])
    device = q.device
    cu_q = torch.tensor([0, *q_lens], device=device, dtype=torch.int32).cumsum(0, dtype=torch.int32)
    cu_k = torch.tensor([0, *k_lens], device=device, dtype=torch.int32).cumsum(0, dtype=torch.int32)
    packed = varlen(torch.cat(q_parts), torch.cat(k_parts), torch.cat(v_parts), cu_q, cu_k, max(q_lens), max(k_lens))
    if isinstance(packed, tuple):  # FA3 returns (out, softmax_lse)
        packed = packed[0]
    return _into(out, packed.reshape(batch, layout.num_tokens, *q.shape[2:]))


SPARSE_BACKENDS: dict[str, SparseKernel] = {
    "reference": sparse_reference,
    "sdpa": sparse_sdpa,
    "flash": sparse_flash,
}


def available_sparse_backends(device: torch.device | str) -> list[str]:
    """Backends that can run on `device`, fastest first."""
    names = []
    if torch.device(device).type == "cuda" and _flash_varlen() is not None:
        names.append("flash")
    names += ["sdpa", "reference"]
    return names


def resolve_sparse_backend(name: str, device: torch.device | str) -> str:
    """Turn a requested backend name (or `auto`) into one that runs here, or say why not."""
    available = available_sparse_backends(device)
    if name == "auto":
        return available[0]
    if name not in SPARSE_BACKENDS:
        raise BackendUnavailableError(
            f"unknown sparse attention backend {name!r}; choose one of auto, {', '.join(SPARSE_BACKENDS)}"
        )
    if name not in available:
        raise BackendUnavailableError(
            f"sparse attention backend {name!r} is not available on {torch.device(device)}: it needs a CUDA GPU "
            f"and flash-attn (pip install -r requirements-gpu.txt); available here: {', '.join(available)}"
        )
    return name
