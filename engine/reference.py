"""Stock diffusers `WanPipeline` set up as the reference HoloCine must reduce to.

With one shot and dense self-attention, HoloCine's math is exactly Wan2.2's; tests and the
overhead benchmark compare the engine against this pipeline built from the same folder,
with fresh (stock-processor) experts and the upstream sampler.
"""

from __future__ import annotations

from pathlib import Path

from diffusers import WanPipeline, WanTransformer3DModel

from .pipeline import HoloCinePipeline
from .sampler import UpstreamFlowScheduler


def stock_wan_pipeline(pipe: HoloCinePipeline, base_folder: Path, shift: float = 5.0) -> WanPipeline:
    """A `WanPipeline` sharing `pipe`'s text encoder and VAE, with the base experts of `base_folder`."""
    stock = WanPipeline(
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder,
        vae=pipe.vae,
        scheduler=UpstreamFlowScheduler(shift=shift),
        transformer=WanTransformer3DModel.from_pretrained(base_folder / "transformer"),
        transformer_2=WanTransformer3DModel.from_pretrained(base_folder / "transformer_2"),
        boundary_ratio=0.875,
    )
    stock.set_progress_bar_config(disable=True)
    return stock
