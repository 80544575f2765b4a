"""The studio's one model: loaded once at start-up, shared by every session.

Gradio's queue runs one render at a time on it (a shared concurrency id), so the pipeline
needs no lock of its own; this service only owns loading it and describing it.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine import EngineInfo, HoloCinePipeline, WeightsSpec, load_pipeline
from engine.lora import LoraSpec, load_lora, loaded_loras
from engine.memory import MemoryMode


class EngineService:
    def __init__(
        self,
        spec: WeightsSpec,
        device: str = "auto",
        memory: MemoryMode = "auto",
        compile_blocks: bool = False,
        loras: Sequence[LoraSpec] = (),
    ) -> None:
        self.spec = spec
        self.pipeline: HoloCinePipeline
        self.info: EngineInfo
        self.pipeline, self.info = load_pipeline(spec, device=device, memory=memory, compile_blocks=compile_blocks)
        for lora in loras:
            load_lora(self.pipeline, lora)

    @property
    def lora_names(self) -> list[str]:
        """The LoRAs a render can switch on (loaded once, off unless a render names them)."""
        return loaded_loras(self.pipeline)

    def markdown(self) -> str:
        """The engine panel: what runs, where, and a plain warning when it is the tiny random model."""
        info = self.info
        defaults = self.pipeline.defaults
        lines = [
            f"**Model:** {info.model_name}",
            f"**Weights:** `{info.base}`"
            + (f" + HoloCine DiT **{info.variant}** from `{info.dit}`" if info.dit else ""),
            f"**Device:** {info.device} · **dtype:** {info.dtype} · **memory:** {info.memory.mode} "
            f"(offload {info.memory.offload}{', fp8 weights' if info.memory.fp8_weights else ''})",
            f"**Attention:** {info.attention_mode} · **sparse backend:** {info.sparse_backend}",
            f"**Native format:** {defaults.width}x{defaults.height}, {defaults.num_frames} frames at {defaults.fps:g} fps"
            f" · **recommended CFG:** {defaults.guidance_scale:g}",
            f"**LoRAs:** {', '.join(self.lora_names) or 'none (start the studio with --lora NAME=FILE to add one)'}",
        ]
        if info.random_weights:
            lines.insert(0, f"> ⚠️ **Tiny random-weight model.** {info.notice}")
        elif info.notice:
            lines.insert(0, f"> ℹ️ {info.notice}")
        return "\n\n".join(lines)
