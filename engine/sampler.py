"""HoloCine's sampler as a diffusers scheduler.

Upstream samples with sigmas linspace(1, 0, N + 1)[:-1], shifted s' = shift*s / (1 + (shift-1)*s),
timestep 1000 s', and Euler steps ending at 0. diffusers' flow-matching Euler scheduler does
the shift and the steps; this subclass only makes the upstream sigmas its default, so any
pipeline that calls `set_timesteps(N)` (stock `WanPipeline` included) samples exactly as upstream.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler


def upstream_sigmas(steps: int) -> list[float]:
    """HoloCine's unshifted sigmas: linspace(1, 0, N + 1) without the final 0."""
    return np.linspace(1.0, 0.0, steps + 1)[:-1].tolist()


class UpstreamFlowScheduler(FlowMatchEulerDiscreteScheduler):
    """Flow-matching Euler with HoloCine's default sigmas (shift 5)."""

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        sigmas: list[float] | None = None,
        **kwargs,
    ) -> None:
        if sigmas is None and num_inference_steps is not None and kwargs.get("timesteps") is None:
            sigmas = upstream_sigmas(num_inference_steps)
        super().set_timesteps(num_inference_steps, device=device, sigmas=sigmas, **kwargs)
