"""The flow-matching objective the sampler integrates, stated once.

Inference (diffusers' FlowMatchEulerDiscreteScheduler, `sampler.py`) moves a latent along
x_sigma = (1 - sigma) * x0 + sigma * noise with the model's output as d x / d sigma, at
timestep t = 1000 * sigma, with the high-noise expert at t >= 1000 * boundary_ratio. So
training noises a clean latent to a sampled sigma and regresses the model's output on the
velocity noise - x0, routing each sample to the expert that owns its sigma.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def flow_matching_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean squared velocity error; with `weights` ((B, F, h, w), per latent pixel), each item's
    weights are first scaled to mean 1, so weighting moves emphasis without changing the loss scale."""
    if weights is None:
        return F.mse_loss(prediction, target)
    weights = weights / weights.mean(dim=(1, 2, 3), keepdim=True)
    return (weights.unsqueeze(1) * (prediction - target) ** 2).mean()


def outline_loss_weights(
    subject: torch.Tensor, weight: float, radius_px: int, spatial_factor: int, temporal_factor: int
) -> torch.Tensor:
    """Per-latent-pixel loss weights that stress the subject's outline.

    An MSE averaged over the frame gives a small subject's outline, which is what says "circle"
    rather than "square", a few percent of the loss. Pixels within `radius_px` of the outline
    (on either side) are marked, and each latent pixel is weighted 1 + (weight - 1) x the share
    of its pixels so marked, pooled as Wan's causal VAE compresses: latent frame 0 is frame 0,
    latent frame k the `temporal_factor` frames ending at frame k x temporal_factor.
    `subject`: (frames, H, W) bool. Returns (latent frames, H / spatial, W / spatial).
    """
    mask = subject.float().unsqueeze(1)  # (frames, 1, H, W)
    size = 2 * radius_px + 1
    near_inside = F.max_pool2d(mask, size, stride=1, padding=radius_px)
    near_outside = F.max_pool2d(1 - mask, size, stride=1, padding=radius_px)
    band = (near_inside * near_outside).squeeze(1)  # 1 where both the subject and the rest are within reach
    groups = [band[:1]] + list(band[1:].split(temporal_factor))
    per_frame = torch.stack([group.mean(0) for group in groups]).unsqueeze(1)
    coverage = F.avg_pool2d(per_frame, spatial_factor).squeeze(1)
    return 1.0 + (weight - 1.0) * coverage
