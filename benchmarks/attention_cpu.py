"""Sparse inter-shot attention (`sdpa` backend) vs dense attention at HoloCine's 6-shot layout on CPU.

HoloCine's default scene is 241 frames (61 latent frames) in 6 shots at 1560 tokens per
latent frame. Here the frame count and shot layout are the same and each latent frame is
scaled down 10x (156 tokens; 8 heads of 64 instead of 40 of 128) so the sequence (9,516
tokens) fits a CPU run. Prints the time ratio next to the FLOP ratio (its limit) and each
kernel's peak memory: both kernels are timed interleaved in one process; each one's memory
is measured in a fresh process whose glibc returns every large block on free
(MALLOC_MMAP_THRESHOLD_), so resident memory tracks live tensors, not allocator caching.

    python benchmarks/attention_cpu.py [--tokens-per-frame 156] [--heads 8] [--head-dim 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.attention.context import ShotTokenLayout  # noqa: E402
from engine.attention.sparse import sparse_sdpa  # noqa: E402
from engine.scene import ShotLayout  # noqa: E402


def holocine_layout(tokens_per_frame: int, shots: int = 6, frames: int = 241) -> ShotTokenLayout:
    layout = ShotLayout.resolve(shots, frames)
    return ShotTokenLayout(layout.token_ranges(tokens_per_frame), tokens_per_frame)


def score_flops(layout: ShotTokenLayout, dense: bool) -> int:
    """Query-key pairs scored (QK^T and PV scale with it alike)."""
    n = layout.num_tokens
    if dense:
        return n * n
    summaries = len(layout.shot_ranges) * layout.tokens_per_frame
    return sum((end - start) * (end - start + summaries) for start, end in layout.shot_ranges)


def dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ShotTokenLayout) -> torch.Tensor:
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def sparse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ShotTokenLayout) -> torch.Tensor:
    """As the engine's processor calls it at inference: the result overwrites the dead queries."""
    return sparse_sdpa(q, k, v, layout, out=q)


KERNELS = {"dense": dense, "sparse_sdpa": sparse}


def inputs(layout: ShotTokenLayout, heads: int, head_dim: int):
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(1, layout.num_tokens, heads, head_dim, generator=g) for _ in range(3))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def peak_memory_child(kernel: str, tokens_per_frame: int, heads: int, head_dim: int) -> None:
    """Run one kernel once in this fresh process; print the peak RSS it added above its inputs (MiB).

    Writing 5 to clear_refs resets the kernel's high-water mark (VmHWM) to the current RSS.
    """
    layout = holocine_layout(tokens_per_frame)
    q, k, v = inputs(layout, heads, head_dim)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    out = KERNELS[kernel](q, k, v, layout)
    peak = _status_kib("VmHWM")
    del out
    print(json.dumps({"peak_mib": (peak - before) / 1024}))


def peak_memory(kernel: str, args: argparse.Namespace) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kernel, "--tokens-per-frame", str(args.tokens_per_frame),
         "--heads", str(args.heads), "--head-dim", str(args.head_dim)],
        capture_output=True, text=True, check=True, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens-per-frame", type=int, default=156)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        peak_memory_child(args.child, args.tokens_per_frame, args.heads, args.head_dim)
        return

    layout = holocine_layout(args.tokens_per_frame)
    q, k, v = inputs(layout, args.heads, args.head_dim)
    times: dict[str, list[float]] = {name: [] for name in KERNELS}
    for kernel in KERNELS.values():
        kernel(q, k, v, layout)  # warm-up
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        for name, kernel in KERNELS.items():
            start = time.perf_counter()
            kernel(q, k, v, layout)
            times[name].append(time.perf_counter() - start)
    dense_s, sparse_s = statistics.median(times["dense"]), statistics.median(times["sparse_sdpa"])
    flop_ratio = score_flops(layout, dense=False) / score_flops(layout, dense=True)
    memory = {name: peak_memory(name, args) for name in KERNELS}

    print(f"layout: 6 shots, 61 latent frames x {args.tokens_per_frame} tokens = {layout.num_tokens} tokens, "
          f"{args.heads} heads x {args.head_dim}, fp32, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"dense:        {dense_s * 1e3:8.1f} ms   peak +{memory['dense']:7.1f} MiB")
    print(f"sparse sdpa:  {sparse_s * 1e3:8.1f} ms   peak +{memory['sparse_sdpa']:7.1f} MiB")
    print(f"time ratio sparse/dense: {sparse_s / dense_s:.3f}")
    print(
        f"FLOP ratio sparse/dense: {flop_ratio:.3f}  (time ratio / FLOP ratio = {sparse_s / dense_s / flop_ratio:.2f}, goal <= 1.5)"
    )
    print(f"peak memory ratio sparse/dense: {memory['sparse_sdpa'] / max(memory['dense'], 1e-9):.2f} (goal <= 1)")


if __name__ == "__main__":
    main()
