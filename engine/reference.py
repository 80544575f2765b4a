"""Stock diffusers Wan pipelines set up as the references HoloCine must reduce to.

With one shot and dense self-attention, HoloCine's math is exactly Wan2.2's; tests and the
overhead benchmark compare the engine against `WanPipeline` built from the same folder,
with fresh (stock-processor) experts and the upstream sampler. A one-shot scene whose
keyframe is held clean (model card `picture_hold: "clean"`) is exactly Wan2.2 TI2V's
image-to-video: `WanImageToVideoPipeline` with `expand_timesteps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import WanImageToVideoPipeline, WanPipeline, WanTransformer3DModel

from .pipeline import HoloCinePipeline, RenderSettings
from .sampler import UpstreamFlowScheduler
from .scene import SceneSpec


def _stock_parts(pipe: HoloCinePipeline, base_folder: Path, shift: float) -> dict[str, Any]:
    return {
        "tokenizer": pipe.tokenizer,
        "text_encoder": pipe.text_encoder,
        "vae": pipe.vae,
        "scheduler": UpstreamFlowScheduler(shift=shift),
        "transformer": WanTransformer3DModel.from_pretrained(base_folder / "transformer"),
        "transformer_2": WanTransformer3DModel.from_pretrained(base_folder / "transformer_2"),
        "boundary_ratio": 0.875,
    }


def stock_wan_pipeline(pipe: HoloCinePipeline, base_folder: Path, shift: float = 5.0) -> WanPipeline:
    """A `WanPipeline` sharing `pipe`'s text encoder and VAE, with the base experts of `base_folder`."""
    stock = WanPipeline(**_stock_parts(pipe, base_folder, shift))
    stock.set_progress_bar_config(disable=True)
    return stock


def stock_wan_ti2v_pipeline(pipe: HoloCinePipeline, base_folder: Path, shift: float = 5.0) -> WanImageToVideoPipeline:
    """Wan2.2 TI2V's image-to-video on the same parts: the first latent frame held clean at timestep 0."""
    stock = WanImageToVideoPipeline(**_stock_parts(pipe, base_folder, shift), expand_timesteps=True)
    stock.set_progress_bar_config(disable=True)
    return stock


def stock_latents(
    stock: WanPipeline | WanImageToVideoPipeline,
    scene: SceneSpec,
    num_frames: int,
    settings: RenderSettings,
    **inputs: Any,
) -> torch.Tensor:
    """The stock pipeline's final latents for a resolved `scene` run with the engine's `settings`
    (`inputs`: what only that pipeline takes, e.g. the image-to-video's `image`)."""
    return stock(
        prompt=scene.prompt,
        negative_prompt=scene.negative_prompt,
        height=scene.height,
        width=scene.width,
        num_frames=num_frames,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        generator=torch.Generator("cpu").manual_seed(settings.seed),
        output_type="latent",
        **inputs,
    ).frames
