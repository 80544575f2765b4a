"""Ulysses context parallelism: one scene's token sequence spread over N processes, attention exact.

Layout of the work (N ranks, S video tokens, H heads; S % N == 0 and H % N == 0):
- Between attention calls every rank holds one contiguous slice of the sequence:
  rank r has tokens [r*S/N, (r+1)*S/N). Forward hooks on each transformer do the
  splitting and gathering, so diffusers' own `WanTransformer3DModel.forward` runs unchanged:
  the input of `blocks.0`, the output of `rope` (the RoPE tables) and, when pictures are
  held clean, the per-token timestep embeddings are cut to the local slice, and the output
  of `proj_out` is all-gathered back to the whole sequence. Norms, modulation, FFN, the
  q/k/v projections, q/k RMS norm and RoPE are per-token, so they run on the local slice
  with the same numbers as on one process.
- Self-attention (`attn1`): the processor does two-way all-to-alls around the attention
  itself. q, k and v go from (sequence slice, all heads) to (whole sequence, H/N heads),
  the unchanged kernel (dense, or sparse per shot with the full shot layout) runs on those
  heads, and the output goes back to (sequence slice, all heads) before `to_out`: four
  all-to-alls per block. Heads are independent in attention, so this is exact; RoPE was
  applied before the exchange with each token's absolute position, so summaries and
  shot-local tokens keep the positions they have on one process.
- Cross-attention (`attn2`): no exchange. Each rank attends with its own query slice over
  the whole text (keys are the text, present in full on every rank); the window rule
  needs each query's shot, so the processor shifts the shot ranges by the rank's token
  offset (`token_offset`) and clips them to the slice.
- The final all-gather gives every rank the whole velocity, so every rank steps the same
  latents (the noise is seeded on the CPU, so it is the same everywhere too). Every rank
  decodes; only rank 0 writes anything (the CLI's job).

Not supported together with it: the step cache (First Block Cache compares a block's
residual on each rank's slice, so ranks could disagree about skipping and deadlock) and
per-item training layouts.

diffusers has its own `ContextParallelConfig`/`enable_parallelism`, but its Ulysses
exchange lives inside `dispatch_attention_fn`: it would wrap each of the window
cross-attention's per-shot dense calls and miss the sparse kernel, which never goes
through the dispatcher. Doing the exchange in our processor keeps both rules as they are.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .errors import BackendUnavailableError, HoloCineError, SceneValidationError

PARALLEL_MODES = ("none", "ulysses")


@dataclass(frozen=True)
class UlyssesGroup:
    """The ranks one scene is spread over, and the exchanges between them."""

    rank: int
    world_size: int
    group: dist.ProcessGroup | None = None  # None = the default (world) group

    # -- checks ------------------------------------------------------------------------------

    def check_heads(self, num_heads: int) -> None:
        if num_heads % self.world_size:
            divisors = [n for n in range(1, num_heads + 1) if num_heads % n == 0]
            raise BackendUnavailableError(
                f"Ulysses parallelism splits attention heads across processes: the model's {num_heads} heads do not "
                f"divide by {self.world_size} processes; use one of {divisors} processes"
            )

    def check_tokens(self, latent_frames: int, tokens_per_frame: int) -> None:
        """The video's tokens must split evenly; names `num_frames` and suggests frame counts that do."""
        tokens = latent_frames * tokens_per_frame
        if tokens % self.world_size == 0:
            return
        step = self.world_size // math.gcd(tokens_per_frame, self.world_size)  # latent frames must be a multiple
        lower = max(step, latent_frames // step * step)
        options = sorted({4 * (lower - 1) + 1, 4 * (lower + step - 1) + 1})
        raise SceneValidationError(
            "num_frames",
            f"Ulysses parallelism over {self.world_size} processes needs the video's tokens to split evenly, but "
            f"{latent_frames} latent frames x {tokens_per_frame} tokens per frame = {tokens} do not divide by "
            f"{self.world_size}; use num_frames {' or '.join(map(str, options))} (or another height/width)",
        )

    # -- exchanges on (batch, tokens, heads, head_dim) tensors -----------------------------------

    def _all_to_all(self, chunks: torch.Tensor) -> torch.Tensor:
        """Send chunk j of dim 0 to rank j; returns chunk r = what rank r sent here."""
        received = torch.empty_like(chunks)
        dist.all_to_all_single(received, chunks, group=self.group)
        return received

    def sequence_to_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S/N, H, D) on each rank -> (B, S, H/N, D): the whole sequence for this rank's heads."""
        batch, local, heads, dim = x.shape
        n = self.world_size
        chunks = x.reshape(batch, local, n, heads // n, dim).permute(2, 0, 1, 3, 4).contiguous()
        received = self._all_to_all(chunks)  # (N source ranks, B, S/N, H/N, D)
        return received.permute(1, 0, 2, 3, 4).reshape(batch, n * local, heads // n, dim)

    def heads_to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, H/N, D) -> (B, S/N, H, D): back to this rank's sequence slice, all heads."""
        batch, tokens, head_share, dim = x.shape
        n = self.world_size
        chunks = x.reshape(batch, n, tokens // n, head_share, dim).permute(1, 0, 2, 3, 4).contiguous()
        received = self._all_to_all(chunks)  # (N head groups, B, S/N, H/N, D)
        return received.permute(1, 2, 0, 3, 4).reshape(batch, tokens // n, n * head_share, dim)

    # -- the sequence slice ------------------------------------------------------------------

    def local_slice(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        size = x.shape[dim]
        if size % self.world_size:
            raise ValueError(f"a sequence of {size} tokens does not split over {self.world_size} processes")
        return x.narrow(dim, self.rank * (size // self.world_size), size // self.world_size)

    def gather_sequence(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        dist.all_gather(parts, x.contiguous(), group=self.group)
        return torch.cat(parts, dim=dim)

    def all_ok(self, ok: bool, device: torch.device) -> bool:
        """True when every rank says ok: ranks that stop alone would leave the others waiting."""
        flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=self.group)
        return bool(flag.item())

    def token_offset(self, local_tokens: int) -> int:
        return self.rank * local_tokens


def shard_transformer(transformer: torch.nn.Module, parallel: UlyssesGroup) -> list:
    """Hook `transformer` so its blocks see only this rank's sequence slice; returns the hook handles."""
    parallel.check_heads(int(transformer.config.num_attention_heads))

    def split_rope(_module, _args, output):
        return tuple(parallel.local_slice(table) for table in output)

    def split_block_input(_module, args):
        return (parallel.local_slice(args[0]), *args[1:])

    def split_token_timesteps(_module, _args, output):
        temb, timestep_proj, *text = output
        if temb.ndim == 2:  # one timestep for the whole sequence: nothing per token to cut
            return output
        return (parallel.local_slice(temb), parallel.local_slice(timestep_proj), *text)

    def gather_output(_module, _args, output):
        return parallel.gather_sequence(output)

    return [
        transformer.rope.register_forward_hook(split_rope),
        transformer.condition_embedder.register_forward_hook(split_token_timesteps),
        transformer.blocks[0].register_forward_pre_hook(split_block_input),
        transformer.proj_out.register_forward_hook(gather_output),
    ]


def enable_ulysses(pipe, parallel: UlyssesGroup) -> None:
    """Spread `pipe`'s transformers over `parallel`'s ranks (every rank calls this with its own rank)."""
    if getattr(pipe, "_ulysses_hooks", None):
        raise RuntimeError("Ulysses parallelism is already enabled on this pipeline")
    experts = [m for m in (pipe.transformer, pipe.transformer_2) if m is not None]
    for model in experts:
        parallel.check_heads(int(model.config.num_attention_heads))
    pipe._ulysses_hooks = [handle for model in experts for handle in shard_transformer(model, parallel)]
    pipe.shot_attention.parallel = parallel


def disable_ulysses(pipe) -> None:
    for handle in getattr(pipe, "_ulysses_hooks", None) or ():
        handle.remove()
    pipe._ulysses_hooks = []
    pipe.shot_attention.parallel = None


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun sets it; 1 when not launched by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_torchrun(device: torch.device, timeout: timedelta | None = None) -> UlyssesGroup:
    """Join the process group torchrun describes in the environment (NCCL on CUDA, gloo on the CPU).

    `timeout` bounds how long a collective waits for a rank that never comes (torch's default: 10 min
    or more); a studio worker group sets its own, as a backstop behind its supervisor.
    """
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and not dist.is_nccl_available():
        raise BackendUnavailableError("--parallel ulysses on CUDA needs NCCL, which this torch build lacks")
    if not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group(backend, device_id=device, timeout=timeout)
        else:
            dist.init_process_group(backend, timeout=timeout)
    return UlyssesGroup(rank=dist.get_rank(), world_size=dist.get_world_size())


class RankError(HoloCineError):
    """An exception one rank of a group raised, in that rank's words: "rank 1: RuntimeError: CUDA out of memory".

    A rank's failure ends the whole group's job, so the job's message must say which rank it was;
    the text travels between processes, so this carries words, not the exception object.
    """

    def __init__(self, rank: int, error: BaseException | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        super().__init__(f"rank {rank}: {text}")
        self.rank = rank


def local_device(requested: str) -> str:
    """With torchrun on a CUDA machine, `auto`/`cuda` means this process's own GPU (LOCAL_RANK)."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return requested
