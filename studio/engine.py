"""The studio's one model: loaded once at start-up, shared by every session.

Gradio's queue runs one render at a time on it (a shared concurrency id), so the pipeline
needs no lock of its own; this service only owns loading it and describing it.
"""

from __future__ import annotations

from engine import EngineInfo, HoloCinePipeline, WeightsSpec, load_pipeline
from engine.memory import MemoryMode


class EngineService:
    def __init__(
        self, spec: WeightsSpec, device: str = "auto", memory: MemoryMode = "auto", compile_blocks: bool = False
    ) -> None:
        self.spec = spec
        self.pipeline: HoloCinePipeline
        self.info: EngineInfo
        self.pipeline, self.info = load_pipeline(spec, device=device, memory=memory, compile_blocks=compile_blocks)

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
            f"**Native format:** {defaults.width}x{defaults.height}, {defaults.num_frames} frames at {defaults.fps:g} fps",
        ]
        if info.random_weights:
            lines.insert(0, f"> ⚠️ **Tiny random-weight model.** {info.notice}")
        elif info.notice:
            lines.insert(0, f"> ℹ️ {info.notice}")
        return "\n\n".join(lines)
