"""What Ulysses context parallelism should cost: all-to-all bytes per step against NVLink, and scaling.

Model, not a measurement: it takes the measured single-GPU CFG step and assumes the compute
splits evenly over N ranks (attention by heads, everything else by tokens: both are exact
1/N shares in engine/parallel.py), then adds the all-to-all time at the given link bandwidth
with no overlap of communication and compute (the engine does not overlap them).

Per self-attention there are four all-to-alls (q, k, v out; the attention output back), each
moving this rank's (S/N) x dim bf16 tensor, of which the (N-1)/N sent to other ranks crosses
the link. A CFG step runs the transformer twice (prompt and negative prompt).

    python benchmarks/context_parallel.py [--tokens 95160] [--step-s 16.5] [--link-gbps 450] [--derate 0.7]
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=95_160, help="video tokens (241 frames of 480x832)")
    parser.add_argument("--dim", type=int, default=5120)
    parser.add_argument("--layers", type=int, default=40)
    parser.add_argument("--heads", type=int, default=40)
    parser.add_argument("--bytes", type=int, default=2, help="bytes per element (bf16)")
    parser.add_argument("--passes", type=int, default=2, help="transformer passes per step (2 with CFG)")
    parser.add_argument("--step-s", type=float, default=16.5, help="measured single-GPU seconds per CFG step")
    parser.add_argument("--link-gbps", type=float, default=450.0, help="GB/s each way per GPU (H200 NVLink 4)")
    parser.add_argument("--derate", type=float, default=0.7, help="share of link peak an all-to-all achieves")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4, 8])
    args = parser.parse_args()

    tensor = args.tokens * args.dim * args.bytes  # one full-sequence, all-heads activation
    per_pass = 4 * args.layers * tensor  # summed over ranks, before dividing by N
    print(f"one activation: {args.tokens:,} tokens x {args.dim} x {args.bytes} B = {tensor / 1e9:.4f} GB")
    print(f"all-to-all bytes per pass (all ranks): 4 x {args.layers} x {tensor / 1e9:.4f} GB = {per_pass / 1e9:.2f} GB")
    print(f"single GPU: {args.step_s} s per CFG step ({args.passes} passes)\n")
    header = "N | per rank per step: buffered / sent | comm at peak | at derate | step (peak / derated) | efficiency"
    print(header)
    for n in args.ranks:
        if args.heads % n or args.tokens % n:
            print(f"{n} | does not split {args.heads} heads / {args.tokens} tokens evenly")
            continue
        buffered = args.passes * per_pass / n
        sent = buffered * (n - 1) / n
        comm = sent / (args.link_gbps * 1e9)
        comm_derated = comm / args.derate
        compute = args.step_s / n
        step, step_derated = compute + comm, compute + comm_derated
        print(
            f"{n} | {buffered / 1e9:.1f} GB / {sent / 1e9:.1f} GB | {comm:.3f} s | {comm_derated:.3f} s | "
            f"{compute:.3f} + comm = {step:.3f} / {step_derated:.3f} s | "
            f"{args.step_s / (n * step):.3f} / {args.step_s / (n * step_derated):.3f}"
        )


if __name__ == "__main__":
    main()
