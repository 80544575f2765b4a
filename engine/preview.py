"""Instant per-shot previews: a linear map from the normalised latent channels to RGB.

Decoding with the VAE every step would cost more than the step itself; a 16x3 projection
of the x0 estimate costs nothing and shows composition and colour as they settle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# Published Wan2.1 VAE factors: rows = latent channels 0..15, columns = R, G, B.
WAN21_RGB_FACTORS: tuple[tuple[float, float, float], ...] = (
    (-0.1299, -0.1692, 0.2932), (0.0671, 0.0406, 0.0442), (0.3568, 0.2548, 0.1747),
    (0.0372, 0.2344, 0.1420), (0.0313, 0.0189, -0.0328), (0.0296, -0.0956, -0.0665),
    (-0.3477, -0.4059, -0.2925), (0.0166, 0.1902, 0.1975), (-0.0412, 0.0267, -0.1364),
    (-0.1293, 0.0740, 0.1636), (0.0680, 0.3019, 0.1128), (0.0032, 0.0581, 0.0639),
    (-0.1251, 0.0927, 0.1699), (0.0060, -0.0633, 0.0005), (0.3477, 0.2275, 0.2950),
    (0.1984, 0.0913, 0.1861),
)  # fmt: skip
WAN21_RGB_BIAS: tuple[float, float, float] = (-0.1835, -0.0868, -0.3360)


class LatentPreviewer:
    """Projects normalised latents (B, 16, F, h, w) to uint8 RGB images, one per shot."""

    def __init__(self, rgb_factors: Sequence[Sequence[float]], rgb_bias: Sequence[float]) -> None:
        self.factors = torch.tensor(rgb_factors, dtype=torch.float32)
        self.bias = torch.tensor(rgb_bias, dtype=torch.float32)
        if self.factors.ndim != 2 or self.factors.shape[1] != 3 or self.bias.shape != (3,):
            raise ValueError(f"preview factors must be (channels, 3) with a bias of 3, got {tuple(self.factors.shape)}")

    @classmethod
    def wan21(cls) -> LatentPreviewer:
        return cls(WAN21_RGB_FACTORS, WAN21_RGB_BIAS)

    def frame_rgb(self, latent_frame: torch.Tensor) -> np.ndarray:
        """(16, h, w) latent frame -> (h, w, 3) uint8."""
        rgb = torch.einsum("chw,cr->hwr", latent_frame.float().cpu(), self.factors) + self.bias
        return ((rgb + 1.0) / 2.0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).numpy()

    def shot_images(self, x0: torch.Tensor, latent_ranges: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """The middle latent frame of each shot of the first batch item, as RGB."""
        return [self.frame_rgb(x0[0, :, (start + end - 1) // 2]) for start, end in latent_ranges]


def fit_rgb_projection(latents: torch.Tensor, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares `colours ~ latents @ factors + bias` over (N, channels) latents and (N, 3) colours.

    How a trained VAE gets its preview: pair each latent voxel with the mean colour of the
    pixels it decodes to and solve; returns (factors (channels, 3), bias (3,)).
    """
    design = torch.cat([latents, torch.ones(latents.shape[0], 1, dtype=latents.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, colours).solution
    return solution[:-1], solution[-1]


def projection_r2(factors: torch.Tensor, bias: torch.Tensor, latents: torch.Tensor, colours: torch.Tensor) -> float:
    """Coefficient of determination of the projection over all colour channels together."""
    residual = ((colours - (latents @ factors + bias)) ** 2).sum()
    total = ((colours - colours.mean(dim=0)) ** 2).sum()
    return float(1.0 - residual / total)
