"""The flow-matching objective the sampler integrates, stated once.

Inference (diffusers' FlowMatchEulerDiscreteScheduler, `sampler.py`) moves a latent along
x_sigma = (1 - sigma) * x0 + sigma * noise with the model's output as d x / d sigma, at
timestep t = 1000 * sigma, with the high-noise expert at t >= 1000 * boundary_ratio. So
training noises a clean latent to a sampled sigma and regresses the model's output on the
velocity noise - x0, routing each sample to the expert that owns its sigma.
"""

from __future__ import annotations

import torch

from .config import Expert, TimestepSampling

NUM_TRAIN_TIMESTEPS = 1000


def sample_sigmas(
    count: int,
    sampling: TimestepSampling,
    generator: torch.Generator,
    low: float = 0.0,
    high: float = 1.0,
) -> torch.Tensor:
    """`count` noise levels in [low, high) from the configured distribution (rejection outside the range)."""
    sigmas = torch.empty(0)
    while sigmas.numel() < count:
        u = torch.rand(count * 2, generator=generator, dtype=torch.float64)
        if sampling.method == "uniform":
            drawn = u
        elif sampling.method == "shifted":  # the sampler's shift, applied to a uniform draw
            drawn = sampling.shift * u / (1 + (sampling.shift - 1) * u)
        else:  # logit-normal, as in SD3
            normal = torch.randn(count * 2, generator=generator, dtype=torch.float64)
            drawn = torch.sigmoid(sampling.mean + sampling.std * normal)
        sigmas = torch.cat([sigmas, drawn[(drawn >= low) & (drawn < high)]])
    return sigmas[:count].float()


def expert_sigma_range(expert: Expert, boundary_ratio: float) -> tuple[float, float]:
    """The sigmas an expert of a two-expert model denoises at inference: its side of the boundary."""
    return (boundary_ratio, 1.0) if expert == "high_noise" else (0.0, boundary_ratio)


def noisy_latents(clean: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    shaped = sigmas.view(-1, *([1] * (clean.dim() - 1))).to(clean.dtype)
    return (1 - shaped) * clean + shaped * noise


def velocity_target(clean: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - clean


def timesteps_for(sigmas: torch.Tensor) -> torch.Tensor:
    return sigmas * NUM_TRAIN_TIMESTEPS
