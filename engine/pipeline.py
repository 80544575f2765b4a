"""HoloCine multi-shot text-to-video on diffusers' Wan2.2 components.

`HoloCinePipeline.generate` reads as a numbered script (check inputs, encode the prompt,
prepare the sampler and the noise, denoise with the two experts, decode shot by shot) and
streams typed events as it goes; `__call__` runs it to the end. Shot structure reaches
the transformers only through the attention processors installed at construction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import torch
from diffusers import AutoencoderKLWan, FirstBlockCacheConfig, WanTransformer3DModel
from diffusers.loaders import WanLoraLoaderMixin
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils.torch_utils import get_module_execution_device, randn_tensor

from . import limits
from .attention import AttentionMode, ShotAttention, ShotTokenLayout, install_shot_attention, resolve_sparse_backend
from .attention.context import ATTENTION_MODES
from .conditioning import HeldPictures, hold_pictures, model_token_layout, token_timesteps
from .decode import decode_latent_ranges
from .editing import SceneEdit
from .errors import HoloCineError, SceneValidationError
from .events import Cancelled, Preview, Progress, RenderEvent, SceneFinished, ShotDecoded
from .lora import activate_loras, check_loras
from .memory import peak_memory, reset_peak_memory
from .preview import LatentPreviewer
from .sampler import UpstreamFlowScheduler
from .scene import SceneSpec, ShotLayout, latent_frame_count, require_in_range
from .text import MAX_TEXT_TOKENS, prompt_spans, tokenize_prompt, window_visibility

# The standard Wan2.x negative prompt, used by Wan's and HoloCine's reference inference.
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)


PICTURE_HOLDS = ("noised", "clean")


@dataclass(frozen=True)
class ModelDefaults:
    """What a scene gets when it leaves size and timing out; supplied by the loaded model."""

    height: int = 480
    width: int = 832
    num_frames: int = 241
    fps: float = 15.0
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT  # what the model's unconditional pass was trained on
    guidance_scale: float = 5.0  # HoloCine's CFG; a small model may recommend less (its card says)
    # How held pictures enter the denoiser (engine.conditioning): "noised" to each step's level,
    # as kept shots are (any model); "clean" at every step with their tokens at timestep 0
    # (Wan2.2 TI2V's way), for a model fine-tuned that way.
    picture_hold: str = "noised"


@dataclass(frozen=True)
class RenderSettings:
    """Every knob of one render, saved with it so any take can be reproduced."""

    steps: int = 50
    seed: int = 0
    guidance_scale: float = ModelDefaults.guidance_scale  # high-noise expert
    guidance_scale_2: float | None = None  # low-noise expert; None = same as guidance_scale
    shift: float = 5.0
    boundary_ratio: float = 0.875
    negative_prompt: str | None = None  # None = the model's default (the standard Wan one for real weights)
    attention: AttentionMode | None = None  # None = the pipeline's mode (chosen by the checkpoint)
    preview_every: int = 1  # 0 = no previews
    loras: tuple[tuple[str, float], ...] = ()  # loaded LoRA adapters active in this render, with strengths
    step_cache: float = 0.0  # diffusers' First Block Cache threshold (0 = off): skips blocks on quiet steps

    def validate(self) -> None:
        require_in_range("steps", self.steps, limits.STEPS)
        require_in_range("seed", self.seed, limits.SEED)
        require_in_range("guidance_scale", self.guidance_scale, limits.GUIDANCE)
        if self.guidance_scale_2 is not None:
            require_in_range("guidance_scale_2", self.guidance_scale_2, limits.GUIDANCE)
        if isinstance(self.preview_every, bool) or not isinstance(self.preview_every, int) or self.preview_every < 0:
            raise SceneValidationError("preview_every", f"must be a whole number >= 0, got {self.preview_every!r}")
        if isinstance(self.step_cache, bool) or not isinstance(self.step_cache, (int, float)) or self.step_cache < 0:
            raise SceneValidationError("step_cache", f"must be a threshold >= 0 (0 = off), got {self.step_cache!r}")
        if not isinstance(self.shift, (int, float)) or self.shift <= 0:
            raise SceneValidationError("shift", f"must be a number > 0, got {self.shift!r}")
        if not isinstance(self.boundary_ratio, (int, float)) or not 0 <= self.boundary_ratio <= 1:
            raise SceneValidationError("boundary_ratio", f"must be in [0, 1], got {self.boundary_ratio!r}")
        if self.attention is not None and self.attention not in ATTENTION_MODES:
            raise SceneValidationError(
                "attention", f"must be one of {', '.join(ATTENTION_MODES)}, got {self.attention!r}"
            )
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise SceneValidationError("negative_prompt", "must be a string")
        for name, strength in self.loras:
            problem = limits.LORA_STRENGTH.problem(strength)
            if problem is not None:
                raise SceneValidationError("loras", f"strength of {name!r} {problem}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EncodedPrompt:
    embeddings: torch.Tensor  # (1, max_length, text_dim), zero past the real tokens
    text_windows: torch.Tensor | None  # (num_shots, max_length) bool, None for the negative prompt
    num_tokens: int


class HoloCinePipeline(DiffusionPipeline, WanLoraLoaderMixin):
    """Both Wan2.2 experts with HoloCine's shot-aware attention; streams a scene as events."""

    model_cpu_offload_seq = "text_encoder->transformer->transformer_2->vae"
    _optional_components = ["transformer_2"]

    def __init__(
        self,
        tokenizer,
        text_encoder,
        vae: AutoencoderKLWan,
        transformer: WanTransformer3DModel,
        transformer_2: WanTransformer3DModel | None = None,
        attention_mode: AttentionMode = "sparse",
    ) -> None:
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            vae=vae,
            transformer=transformer,
            transformer_2=transformer_2,
        )
        self.register_to_config(attention_mode=attention_mode)
        # Portable default kernel; `set_attention(sparse_backend=...)` picks another once the pipeline is placed.
        self.shot_attention = ShotAttention(attention_mode, "sdpa")
        for model in (transformer, transformer_2):
            if model is not None:
                install_shot_attention(model, self.shot_attention)
        self.defaults = ModelDefaults()
        self.previewer = LatentPreviewer.wan21()

    # -- settings ---------------------------------------------------------------------------

    def set_attention(self, mode: AttentionMode | None = None, sparse_backend: str | None = None) -> None:
        """Change the default attention mode and/or the sparse kernel (`auto` re-picks for the device)."""
        if mode is not None:
            if mode not in ATTENTION_MODES:
                raise SceneValidationError("attention", f"must be one of {', '.join(ATTENTION_MODES)}, got {mode!r}")
            self.shot_attention.mode = mode
        if sparse_backend is not None:
            self.shot_attention.sparse_backend = resolve_sparse_backend(sparse_backend, self._execution_device)

    @property
    def spatial_factor(self) -> int:
        return int(self.vae.config.scale_factor_spatial) * int(self.transformer.config.patch_size[1])

    # -- steps of a render --------------------------------------------------------------------

    def encode_prompt(self, prompt: str, num_shots: int | None, field: str) -> EncodedPrompt:
        """One umT5 pass over the whole prompt; with `num_shots`, also each shot's text window."""
        tokenized = tokenize_prompt(self.tokenizer, prompt, field=field, max_length=MAX_TEXT_TOKENS)
        windows = None
        if num_shots is not None:
            windows = window_visibility(prompt_spans(tokenized, num_shots), tokenized.max_length)
        encoder_device = get_module_execution_device(self.text_encoder)
        mask = tokenized.attention_mask
        hidden = self.text_encoder(tokenized.input_ids.to(encoder_device), mask.to(encoder_device)).last_hidden_state
        hidden = hidden.to(dtype=self.text_encoder.dtype, device=self._execution_device)
        hidden[:, tokenized.num_tokens :] = 0
        return EncodedPrompt(hidden.to(self.transformer.dtype), windows, tokenized.num_tokens)

    def check_size(self, height: int, width: int) -> None:
        factor = self.spatial_factor
        for name, value in (("height", height), ("width", width)):
            if value % factor:
                raise SceneValidationError(name, f"must be a multiple of {factor} for this model, got {value}")

    def resolve_scene(self, scene: SceneSpec, settings: RenderSettings | None = None) -> tuple[SceneSpec, ShotLayout]:
        """Fill unset size/timing from the model's defaults, snap the layout, and check the prompts fit
        and the settings' LoRAs are loaded.

        Cheap (no model runs), so callers validate a scene with it before creating any output.
        """
        settings = settings or RenderSettings()
        check_loras(self, (name for name, _ in settings.loras))
        filled = replace(
            scene,
            height=scene.height or self.defaults.height,
            width=scene.width or self.defaults.width,
            fps=scene.fps or self.defaults.fps,
            negative_prompt=next(
                p
                for p in (scene.negative_prompt, settings.negative_prompt, self.defaults.negative_prompt)
                if p is not None
            ),
        )
        self.check_size(filled.height, filled.width)  # type: ignore[arg-type]
        layout = filled.layout(self.defaults.num_frames)
        parallel = self.shot_attention.parallel
        if parallel is not None:  # Ulysses context parallelism: the tokens must split evenly over the ranks
            if settings.step_cache:
                raise SceneValidationError(
                    "step_cache", "the step cache cannot run with context parallelism (ranks could skip differently)"
                )
            tokens_per_frame = (filled.height // self.spatial_factor) * (filled.width // self.spatial_factor)  # type: ignore[operator]
            parallel.check_tokens(len(filled.references) + latent_frame_count(layout.num_frames), tokens_per_frame)
        prompt_spans(
            tokenize_prompt(self.tokenizer, filled.model_prompt, field="prompt"),
            len(filled.references) + layout.num_shots,
        )
        tokenize_prompt(self.tokenizer, filled.negative_prompt, field="negative_prompt")  # type: ignore[arg-type]
        return filled, layout

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """What the VAE encodes -> the normalised latents the DiT denoises (inverse of `denormalize`),
        computed exactly as diffusers' Wan image-to-video pipeline normalises its image latent."""
        mean = torch.tensor(self.vae.config.latents_mean).view(1, -1, 1, 1, 1).to(z.device, z.dtype)
        inverse_std = 1.0 / torch.tensor(self.vae.config.latents_std).view(1, -1, 1, 1, 1).to(z.device, z.dtype)
        return (z - mean) * inverse_std

    def denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> what the VAE decodes, computed exactly as diffusers' Wan pipeline does."""
        z = latents.to(get_module_execution_device(self.vae), dtype=self.vae.dtype)
        mean = torch.tensor(self.vae.config.latents_mean).view(1, -1, 1, 1, 1).to(z.device, z.dtype)
        inverse_std = 1.0 / torch.tensor(self.vae.config.latents_std).view(1, -1, 1, 1, 1).to(z.device, z.dtype)
        return z / inverse_std + mean

    def _expert_for(self, timestep: torch.Tensor, boundary_timestep: float) -> tuple[WanTransformer3DModel, str]:
        if self.transformer_2 is None or timestep >= boundary_timestep:
            return self.transformer, "high_noise"
        return self.transformer_2, "low_noise"

    def _keep_held_text(self, positive: EncodedPrompt, edit: SceneEdit, num_references: int) -> EncodedPrompt:
        """Held shots see the prompt they were rendered with; redone shots (and references) the new one.

        Both prompts' embeddings go side by side as one text sequence; each shot's window
        selects its keys from one half, so a held shot's cross-attention is unchanged.
        Window rows are the model's shots: `num_references` reference shots, then the scene's.
        """
        kept_prompt = edit.kept_prompt
        assert kept_prompt is not None and positive.text_windows is not None
        kept_references = len(kept_prompt.references)
        kept = self.encode_prompt(
            kept_prompt.model_prompt, kept_references + len(kept_prompt.shots), field="prompt"
        )
        assert kept.text_windows is not None
        new_windows = positive.text_windows
        kept_width = kept.text_windows.shape[1]
        windows = torch.zeros(new_windows.shape[0], kept_width + new_windows.shape[1], dtype=torch.bool)
        for row in range(new_windows.shape[0]):
            shot = row - num_references
            if shot in edit.held_shots and shot < len(kept_prompt.shots):
                windows[row, :kept_width] = kept.text_windows[kept_references + shot]
            else:
                windows[row, kept_width:] = new_windows[row]
        embeddings = torch.cat([kept.embeddings, positive.embeddings], dim=1)
        return EncodedPrompt(embeddings, windows, positive.num_tokens)

    def _velocity(
        self,
        model: WanTransformer3DModel,
        latents: torch.Tensor,
        t: torch.Tensor,
        prompt: EncodedPrompt,
        token_layout: ShotTokenLayout,
        pass_name: str,
        step_index: int,
    ) -> torch.Tensor:
        """One expert pass; the prompt's text windows (None for the negative prompt) steer cross-attention.

        `t` is the step's timestep, or (1, tokens) of them when pictures are held clean.
        The named cache context keeps a step cache's state for the cond and uncond passes apart.
        """
        with (
            self.shot_attention.scope(token_layout, prompt.text_windows),
            model.cache_context(pass_name, step_index=step_index),
        ):
            return model(
                hidden_states=latents.to(model.dtype),
                timestep=t.expand(latents.shape[0], *t.shape[1:]),
                encoder_hidden_states=prompt.embeddings,
                return_dict=False,
            )[0]

    @torch.no_grad()
    def generate(
        self,
        scene: SceneSpec,
        settings: RenderSettings | None = None,
        cancel: threading.Event | None = None,
        edit: SceneEdit | None = None,
    ) -> Iterator[RenderEvent]:
        """Render `scene`, yielding progress, previews, each decoded shot, then the scene.

        With `edit`, some shots are held to stored latents (see `engine.editing`); the scene's
        keyframes and reference images are held likewise (see `engine.conditioning`).
        """
        started = time.perf_counter()
        settings = settings or RenderSettings()

        # 1. Check inputs.
        settings.validate()
        scene, layout = self.resolve_scene(scene, settings)
        device = self._execution_device
        reset_peak_memory(device)

        # 2. Encode the scene prompt (with a window per reference and per shot) and the negative prompt (without).
        num_references = len(scene.references)
        positive = self.encode_prompt(scene.model_prompt, num_references + layout.num_shots, field="prompt")
        if edit is not None and edit.kept_prompt is not None and edit.kept_prompt.model_prompt != scene.model_prompt:
            positive = self._keep_held_text(positive, edit, num_references)
        use_cfg = settings.guidance_scale > 1.0
        negative_encoded = self.encode_prompt(scene.negative_prompt, None, field="negative_prompt") if use_cfg else None
        encoded_at = time.perf_counter()

        # 3. Sampler: upstream sigmas through diffusers' flow-matching Euler scheduler (shift applied there).
        scheduler = UpstreamFlowScheduler(shift=settings.shift)
        scheduler.set_timesteps(settings.steps, device=device)
        scheduler.set_begin_index(0)
        boundary_timestep = settings.boundary_ratio * scheduler.config.num_train_timesteps
        guidance_2 = settings.guidance_scale if settings.guidance_scale_2 is None else settings.guidance_scale_2

        # 4. Initial noise, seeded on the CPU so a seed means the same video on every device; the
        #    scene's noise is drawn first, so references do not change it. Held frames (pictures,
        #    kept shots) and the starting point of a vary, over the model's sequence.
        spatial = int(self.vae.config.scale_factor_spatial)
        shape = (
            1,
            self.transformer.config.in_channels,
            latent_frame_count(layout.num_frames),
            scene.height // spatial,  # type: ignore[operator]
            scene.width // spatial,  # type: ignore[operator]
        )
        generator = torch.Generator("cpu").manual_seed(settings.seed)
        noise = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        if num_references:
            reference_noise = randn_tensor(
                (*shape[:2], num_references, *shape[3:]), generator=generator, device=device, dtype=torch.float32
            )
            noise = torch.cat([reference_noise, noise], dim=2)
        pictures = hold_pictures(self, scene, layout, shape)
        stored, held_frames, picture_frames, first_step = self._held_latents(pictures, edit, layout, shape, settings)
        held = held_frames.to(device).view(1, 1, -1, 1, 1)
        # 1 where a held frame follows the noise schedule, 0 where it is held clean (the pictures
        # of a model trained so; an edit's kept shots always follow it, so they end as stored).
        clean_frames = picture_frames & (self.defaults.picture_hold == "clean")
        hold_noise = (~clean_frames).float().to(device).view(1, 1, -1, 1, 1)
        stored = stored.to(device)
        latents = noise
        if edit is not None:  # as diffusers' image-to-image: strength is the share of the schedule run again
            start_sigma = scheduler.sigmas[first_step]
            latents = (1 - start_sigma) * stored + start_sigma * noise
            scheduler.set_begin_index(first_step)
        holding = bool(held_frames.any())
        patch = self.transformer.config.patch_size
        tokens_per_frame = (shape[3] // patch[1]) * (shape[4] // patch[2])
        token_layout = model_token_layout(layout, num_references, tokens_per_frame)

        # 5. Denoise, with this render's LoRAs active and, if asked, a step cache that lives
        #    only for this render (so no cached state crosses scenes or layouts).
        activate_loras(self, dict(settings.loras))
        experts = [m for m in (self.transformer, self.transformer_2) if m is not None]
        if settings.step_cache:
            for expert_model in experts:
                expert_model.enable_cache(FirstBlockCacheConfig(threshold=settings.step_cache))
        default_mode = self.shot_attention.mode
        self.shot_attention.mode = settings.attention or default_mode
        try:
            denoise_started = time.perf_counter()
            for i in range(first_step, settings.steps):
                t = scheduler.timesteps[i]
                if cancel is not None and cancel.is_set():
                    yield Cancelled(step=i)
                    return
                if holding:  # held frames: their clean latents at this step's noise level (or clean)
                    sigma_now = scheduler.sigmas[i] * hold_noise
                    latents = torch.where(held, (1 - sigma_now) * stored + sigma_now * noise, latents)
                model, expert = self._expert_for(t, boundary_timestep)
                guidance = settings.guidance_scale if expert == "high_noise" else guidance_2
                # Clean-held pictures sit at timestep 0 (one per token), everything else at t.
                model_t = token_timesteps(t.view(1), clean_frames, tokens_per_frame) if clean_frames.any() else t
                velocity = self._velocity(model, latents, model_t, positive, token_layout, "cond", i)
                if negative_encoded is not None:
                    velocity_negative = self._velocity(
                        model, latents, model_t, negative_encoded, token_layout, "uncond", i
                    )
                    velocity = velocity_negative + guidance * (velocity - velocity_negative)
                sigma = scheduler.sigmas[i]
                step = i + 1
                if settings.preview_every and (step % settings.preview_every == 0 or step == settings.steps):
                    x0 = (latents - sigma * velocity.float())[:, :, num_references:]
                    yield Preview(step=step, images=tuple(self.previewer.shot_images(x0, layout.latent_ranges)))
                latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
                elapsed = time.perf_counter() - denoise_started
                yield Progress(
                    step=step,
                    total_steps=settings.steps,
                    expert=expert,  # type: ignore[arg-type]
                    elapsed_s=elapsed,
                    eta_s=elapsed / (step - first_step) * (settings.steps - step),
                )
        finally:
            self.shot_attention.mode = default_mode
            if settings.step_cache:
                for expert_model in experts:
                    expert_model.disable_cache()
        if holding:  # held frames end exactly where they were
            latents = torch.where(held, stored, latents)
        latents = latents[:, :, num_references:]  # reference shots never leave the model
        denoised_at = time.perf_counter()

        # 6. Decode shot by shot, in time order.
        z = self.denormalize(latents)
        shot_videos = []
        for shot_index, video in enumerate(decode_latent_ranges(self.vae, z, layout.latent_ranges)):
            shot_video = video[0].float().cpu()
            shot_videos.append(shot_video)
            yield ShotDecoded(shot_index=shot_index, frame_range=layout.frame_ranges[shot_index], video=shot_video)
        finished = time.perf_counter()
        self.maybe_free_model_hooks()

        yield SceneFinished(
            layout=layout,
            latents=latents.float().cpu(),
            video=torch.cat(shot_videos, dim=1),
            timings={
                "encode_s": encoded_at - started,
                "denoise_s": denoised_at - encoded_at,
                "decode_s": finished - denoised_at,
                "total_s": finished - started,
                "step_s": (denoised_at - encoded_at) / settings.steps,
            },
            peak_memory_bytes=peak_memory(device),
            pictures=tuple(use.to_dict() for use in pictures.uses),
        )

    def _held_latents(
        self,
        pictures: HeldPictures,
        edit: SceneEdit | None,
        layout: ShotLayout,
        shape: tuple[int, ...],
        settings: RenderSettings,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """The clean latents over the model's sequence, which frames are held, which of those hold
        pictures (not an edit's kept shots), and the first step.

        A kept shot of an edit stays exactly as stored (its keyframe, if any, is in it already);
        pictures hold every other frame they name. Unheld frames carry the edit's stored latents,
        the starting point of a vary.
        """
        stored, held = pictures.latents, pictures.mask.clone()
        if edit is None:
            return stored, held, pictures.mask, 0
        if tuple(edit.stored.shape) != shape:
            raise SceneValidationError(
                "latents",
                f"stored latents are {tuple(edit.stored.shape)} but the scene now needs {tuple(shape)}: "
                "its shots, length or size changed since that render",
            )
        r = pictures.num_references
        kept = torch.cat([torch.zeros(r, dtype=torch.bool), edit.held_frames(layout)])
        scene_stored = torch.cat([torch.zeros(*shape[:2], r, *shape[3:]), edit.stored.float().cpu()], dim=2)
        picture_frames = pictures.mask & ~kept
        stored = torch.where(picture_frames.view(1, 1, -1, 1, 1), stored, scene_stored)
        return stored, held | kept, picture_frames, settings.steps - int(settings.steps * edit.strength)

    def __call__(self, scene: SceneSpec, settings: RenderSettings | None = None, **kwargs) -> SceneFinished:
        """Run a render to the end and return the finished scene."""
        finished = None
        for event in self.generate(scene, settings, **kwargs):
            if isinstance(event, SceneFinished):
                finished = event
        if finished is None:
            raise HoloCineError("the render was cancelled before it finished")
        return finished
