"""Flow-matching training of the engine's own HoloCine model: `python -m engine train CONFIG`.

The trainer drives the very pipeline the engine renders with (same attention processors,
text windows, latent normalisation and velocity objective), so a trained model or LoRA
means at render time exactly what it meant in training. Items of a batch keep their own
shot layouts and text windows (`ShotAttention.scope_per_item`), and each item goes to the
expert that owns its noise level. Everything needed to continue (weights, optimizer,
schedule, data order, noise RNG) is checkpointed, and a run resumes from its latest
checkpoint when started again. With `ema_decay` set, an exponential moving average of the
trained weights (diffusers' `EMAModel`) is what validation renders and the export saves,
the usual practice for diffusion models (on the toy model it measured level with the raw
weights: README, stage 4).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from ..attention.context import AttentionCall
from ..conditioning import model_token_layout, token_timesteps
from ..files import atomic_path
from ..pipeline import HoloCinePipeline, RenderSettings
from ..scene import SceneSpec
from ..video import frames_to_uint8, write_mp4
from ..weights import MODEL_CARD, ModelCard, WeightsSpec, load_pipeline, load_text_and_vae, pick_device
from .config import TrainConfig, TrainingConfigError
from .data import ClipBatches, EncodedClip, encode_clips, training_clips
from .objective import (
    expert_sigma_range,
    flow_matching_loss,
    noisy_latents,
    sample_sigmas,
    timesteps_for,
    velocity_target,
)

ADAPTER = "trained"
CHECKPOINTS = "checkpoints"


class Trainer:
    """One training run. `pipe` trains a pipeline already in memory (a notebook, a benchmark
    building random real-size experts) instead of loading `config.weights`."""

    def __init__(self, config: TrainConfig, pipe: HoloCinePipeline | None = None) -> None:
        config.validate()
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.device = pick_device(config.device)
        use_bf16 = config.precision == "bf16" or (config.precision == "auto" and self.device.type == "cuda")
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None
        torch.manual_seed(config.seed)
        self.pipe = self._prepare(pipe if pipe is not None else self._load_pipeline())
        empty = self.pipe.encode_prompt("", None, field="caption_dropout")
        self.empty_text = empty.embeddings[0, : empty.num_tokens].float().cpu()  # what a dropped caption reads
        self.experts = self._trained_experts()
        self.parameters = [p for model in self.experts.values() for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=config.learning_rate, weight_decay=config.weight_decay, betas=(0.9, 0.99)
        )
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.ema = EMAModel(self.parameters, decay=config.ema_decay) if config.ema_decay is not None else None
        self.noise_generator = torch.Generator().manual_seed(config.seed)
        self.step = 0

    # -- setup ----------------------------------------------------------------------------------

    def _load_pipeline(self) -> HoloCinePipeline:
        config = self.config
        if config.new_model is not None:
            return self._new_model_pipeline()
        pipe, _ = load_pipeline(
            WeightsSpec(config.weights, dit=config.dit, variant=config.variant),
            device=str(self.device),
            dtype=torch.float32 if config.mode == "full" else None,
            attention=config.attention,
        )
        return pipe

    def _prepare(self, pipe: HoloCinePipeline) -> HoloCinePipeline:
        """Freeze the text side and VAE, and set the attention the config trains."""
        for module in (pipe.text_encoder, pipe.vae):
            module.requires_grad_(False)
        if self.config.attention is not None:
            pipe.set_attention(self.config.attention)
        pipe.shot_attention.summaries = self.config.attention_summaries
        pipe.shot_attention.windows = self.config.window_cross_attention
        return pipe

    def _new_model_pipeline(self) -> HoloCinePipeline:
        """Text encoder and VAE from `weights`; transformer(s) built from `new_model.config`."""
        config = self.config
        assert config.new_model is not None
        base = Path(config.weights)
        if not base.is_dir():
            raise TrainingConfigError(
                "weights", f"no such folder {base} (it must hold tokenizer/, text_encoder/, vae/)"
            )
        tokenizer, text_encoder, vae = load_text_and_vae(base, torch.float32)
        transformers = []
        for _ in range(config.new_model.experts):
            try:
                transformers.append(WanTransformer3DModel(**config.new_model.config))
            except TypeError as error:
                raise TrainingConfigError("new_model.config", str(error)) from error
        if transformers[0].config.in_channels != vae.config.z_dim:
            raise TrainingConfigError(
                "new_model.config.in_channels",
                f"is {transformers[0].config.in_channels} but the VAE's latents have {vae.config.z_dim} channels",
            )
        pipe = HoloCinePipeline(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            vae=vae,
            transformer=transformers[0],
            transformer_2=transformers[1] if len(transformers) == 2 else None,
            attention_mode=config.attention or "sparse",
        )
        pipe.to(self.device)
        card = ModelCard.read(base)
        pipe.defaults, pipe.previewer = card.defaults, card.previewer
        return pipe

    def _trained_experts(self) -> dict[str, WanTransformer3DModel]:
        from peft import LoraConfig

        pipe, config = self.pipe, self.config
        models = {"high_noise": pipe.transformer, "low_noise": pipe.transformer_2}
        torch.manual_seed(config.seed)  # LoRA's random init from the seed alone, whatever loading drew
        experts = {}
        for name in config.experts:
            model = models[name]
            if model is None:
                raise TrainingConfigError("experts", f"the model has no {name} expert (it has a single transformer)")
            model.requires_grad_(False)
            if config.mode == "lora":
                model.add_adapter(
                    LoraConfig(
                        r=config.lora.rank,
                        lora_alpha=config.lora.alpha,
                        target_modules=list(config.lora.target_modules),
                        init_lora_weights=True,
                    ),
                    adapter_name=ADAPTER,
                )
                for parameter in model.parameters():
                    if parameter.requires_grad:
                        parameter.data = parameter.data.float()
            else:
                model.requires_grad_(True)
            if config.gradient_checkpointing:
                model.enable_gradient_checkpointing()
            model.train()
            experts[name] = model
        return experts

    def _lr_factor(self, step: int) -> float:
        warmup = min(1.0, (step + 1) / max(1, self.config.warmup_steps))
        if self.config.lr_schedule == "constant":
            return warmup
        horizon = self.config.schedule_steps or self.config.steps
        return warmup * 0.5 * (1 + math.cos(math.pi * min(step, horizon) / horizon))

    # -- one step -------------------------------------------------------------------------------

    def _sigma_range(self) -> tuple[float, float]:
        if self.pipe.transformer_2 is None or len(self.experts) == 2:
            return 0.0, 1.0
        return expert_sigma_range(next(iter(self.experts)), self.config.boundary_ratio)  # type: ignore[arg-type]

    @property
    def picture_hold(self) -> str:
        """How this run holds pictures: the config's choice, else the loaded model's (its card)."""
        return self.config.picture_hold or self.pipe.defaults.picture_hold

    def _owner(self, sigma: float) -> str:
        if self.pipe.transformer_2 is None or sigma >= self.config.boundary_ratio:
            return "high_noise"
        return "low_noise"

    def _text(self, batch: list[EncodedClip], dropped: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Padded prompt embeddings and windows; dropped items get the empty prompt seen by every shot."""
        max_length = batch[0].text_windows.shape[1]
        text = torch.zeros(len(batch), max_length, batch[0].text.shape[1])
        windows: list[torch.Tensor | None] = []
        for i, clip in enumerate(batch):
            if dropped[i]:
                text[i, : self.empty_text.shape[0]] = self.empty_text
                windows.append(None)
            else:
                text[i, : clip.text.shape[0]] = clip.text
                windows.append(clip.text_windows)
        return text, windows

    def _clean_frames(self, batch: list[EncodedClip]) -> torch.Tensor | None:
        """(B, F) True on the latent frames held clean; None when nothing is (or pictures follow the noise)."""
        if self.picture_hold != "clean" or all(clip.held is None for clip in batch):
            return None
        frames = batch[0].latents.shape[1]
        return torch.stack(
            [clip.held if clip.held is not None else torch.zeros(frames, dtype=torch.bool) for clip in batch]
        )

    def train_step(self, batch: list[EncodedClip]) -> float:
        """One optimizer step on `batch`; returns its loss (mean squared velocity error, outline-weighted if set)."""
        config, device = self.config, self.device
        clean = torch.stack([clip.latents for clip in batch])
        weights = None  # per latent pixel; a clip without its own weighs every pixel 1
        if any(clip.loss_weights is not None for clip in batch):
            weights = torch.stack(
                [clip.loss_weights if clip.loss_weights is not None else torch.ones(clean.shape[2:]) for clip in batch]
            )
        noise = torch.randn(clean.shape, generator=self.noise_generator)
        sigmas = sample_sigmas(len(batch), config.timesteps, self.noise_generator, *self._sigma_range())
        dropped = torch.rand(len(batch), generator=self.noise_generator) < config.caption_dropout
        text, windows = self._text(batch, dropped)
        noisy = noisy_latents(clean, noise, sigmas)
        clean_frames = self._clean_frames(batch)
        if clean_frames is not None:  # held pictures enter clean at every noise level, as the render holds them
            noisy = torch.where(clean_frames.view(len(batch), 1, -1, 1, 1), clean, noisy)
        noisy = noisy.to(device)
        target = velocity_target(clean, noise).to(device)
        if weights is not None:
            weights = weights.to(device)
        timesteps = timesteps_for(sigmas).to(device)
        text = text.to(device)
        patch = self.pipe.transformer.config.patch_size
        tokens_per_frame = (clean.shape[3] // patch[1]) * (clean.shape[4] // patch[2])
        if clean_frames is not None:  # clean-held pictures at timestep 0, as the render passes them
            timesteps = token_timesteps(timesteps, clean_frames, tokens_per_frame)
        calls = [
            AttentionCall(model_token_layout(clip.layout, clip.num_references, tokens_per_frame), window)
            for clip, window in zip(batch, windows)
        ]
        total = 0.0
        for name, model in self.experts.items():
            items = [i for i, sigma in enumerate(sigmas.tolist()) if self._owner(sigma) == name]
            if not items:
                continue
            index = torch.tensor(items, device=device)
            autocast = torch.autocast(device.type, dtype=self.autocast_dtype) if self.autocast_dtype else nullcontext()
            # Backward inside the scope: gradient checkpointing re-runs the attention during it.
            with self.pipe.shot_attention.scope_per_item([calls[i] for i in items]), autocast:
                prediction = model(
                    hidden_states=noisy.index_select(0, index).to(model.dtype),
                    timestep=timesteps.index_select(0, index),
                    encoder_hidden_states=text.index_select(0, index).to(model.dtype),
                    return_dict=False,
                )[0]
                item_weights = None if weights is None else weights.index_select(0, index)
                loss = flow_matching_loss(prediction.float(), target.index_select(0, index), item_weights)
                loss = loss * len(items) / len(batch)
                loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(self.parameters, config.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.step(self.parameters)
        return total

    @contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """The EMA weights in the model for the duration (the trained ones without EMA); restored after."""
        if self.ema is None:
            yield
            return
        self.ema.store(self.parameters)
        self.ema.copy_to(self.parameters)
        try:
            yield
        finally:
            self.ema.restore(self.parameters)

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> Path:
        """Train to `config.steps` (resuming if a checkpoint exists) and export; returns the export."""
        config = self.config
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        data_state = self._resume()
        if self.step < config.steps:  # a finished run only re-exports: no clip needs encoding
            clips = encode_clips(self.pipe, training_clips(config.data), outline=config.outline_loss)
            batches = ClipBatches(clips, config.batch_size, config.seed)
            if data_state is not None:
                batches.restore(data_state)
            self._train(batches)
        return self.export()

    def _train(self, batches: ClipBatches) -> None:
        config = self.config
        log = (self.output_dir / "log.jsonl").open("a", encoding="utf-8")
        smoothed = None
        started, started_step = time.perf_counter(), self.step
        with tqdm(total=config.steps, initial=self.step, desc="train", unit="step", mininterval=5) as bar:
            while self.step < config.steps:
                loss = self.train_step(batches.next_batch())
                self.step += 1
                smoothed = loss if smoothed is None else 0.98 * smoothed + 0.02 * loss
                bar.update(1)
                bar.set_postfix(loss=f"{smoothed:.4f}")
                if self.step % config.log_every == 0 or self.step == config.steps:
                    seconds = (time.perf_counter() - started) / (self.step - started_step)
                    record = {
                        "step": self.step,
                        "loss": round(smoothed, 5),
                        "lr": self.schedule.get_last_lr()[0],
                        "s_per_step": round(seconds, 4),
                    }
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                    self._save_checkpoint(batches)
                if config.validation.every and (self.step % config.validation.every == 0 or self.step == config.steps):
                    self.validate()
        log.close()

    # -- checkpoints ----------------------------------------------------------------------------

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {
            f"{name}.{key}": value.detach().cpu().clone()
            for name, model in self.experts.items()
            for key, value in model.named_parameters()
            if value.requires_grad
        }

    def _save_checkpoint(self, batches: ClipBatches) -> None:
        folder = self.output_dir / CHECKPOINTS
        folder.mkdir(exist_ok=True)
        state = {
            "step": self.step,
            "trainable": self._trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "data_rng": batches.state(),
            "noise_rng": self.noise_generator.get_state(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }
        with atomic_path(folder / f"step-{self.step:07d}.pt") as partial:  # a crash never leaves a corrupt "latest"
            torch.save(state, partial)
        for old in sorted(folder.glob("step-*.pt"))[: -self.config.keep_checkpoints]:
            old.unlink()

    def _resume(self) -> dict | None:
        """Load the latest checkpoint, if any; returns the data order's RNG state to restore."""
        checkpoints = sorted((self.output_dir / CHECKPOINTS).glob("step-*.pt"))
        if not checkpoints:
            return None
        state = torch.load(checkpoints[-1], map_location="cpu", weights_only=False)
        parameters = {
            f"{name}.{key}": value
            for name, model in self.experts.items()
            for key, value in model.named_parameters()
            if value.requires_grad
        }
        if set(parameters) != set(state["trainable"]):
            raise TrainingConfigError(
                "output_dir", f"{checkpoints[-1]} was saved by a run with other trainable weights; use a new output_dir"
            )
        if self.ema is not None and state.get("ema") is None:
            raise TrainingConfigError(
                "ema_decay", f"{checkpoints[-1]} was saved by a run without EMA; use a new output_dir"
            )
        with torch.no_grad():
            for key, value in state["trainable"].items():
                parameters[key].copy_(value)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
            self.ema.to(self.device)
            self.ema.decay = self.config.ema_decay  # a resumed run may change it
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.noise_generator.set_state(state["noise_rng"])
        self.step = state["step"]
        tqdm.write(f"resumed from {checkpoints[-1]} (step {self.step})")
        return state["data_rng"]

    # -- validation and export ------------------------------------------------------------------

    def render_settings(self) -> RenderSettings:
        validation = self.config.validation
        return RenderSettings(
            steps=validation.steps,
            seed=validation.seed,
            guidance_scale=validation.guidance_scale,
            shift=validation.shift,
            boundary_ratio=self.config.boundary_ratio,
            negative_prompt=validation.negative_prompt,
            preview_every=0,
            loras=((ADAPTER, 1.0),) if self.config.mode == "lora" else (),
        )

    @torch.no_grad()
    def validate(self) -> list[Path]:
        """Render the validation scenes with the weights as they are now; one MP4 each."""
        folder = self.output_dir / "validation"
        folder.mkdir(exist_ok=True)
        written = []
        for model in self.experts.values():
            model.eval()
        try:
            with self.averaged_weights():
                for index, raw in enumerate(self.config.validation.scenes):
                    scene = SceneSpec.from_dict(raw)
                    finished = self.pipe(scene, self.render_settings())
                    path = folder / f"step-{self.step:07d}-scene{index}.mp4"
                    write_mp4(path, frames_to_uint8(finished.video), fps=scene.fps or self.pipe.defaults.fps)
                    written.append(path)
        finally:
            for model in self.experts.values():
                model.train()
        return written

    def export(self) -> Path:
        """LoRA mode: a pair of LoRA files the engine loads. Full mode: a complete weights folder."""
        with self.averaged_weights():
            return self._export()

    def _export(self) -> Path:
        if self.config.mode == "lora":
            from peft.utils import get_peft_model_state_dict

            folder = self.output_dir / "lora"
            folder.mkdir(exist_ok=True)
            for name, model in self.experts.items():
                layers = get_peft_model_state_dict(model, adapter_name=ADAPTER)
                HoloCinePipeline.save_lora_weights(
                    str(folder), transformer_lora_layers=layers, weight_name=f"{name}.safetensors"
                )
            return folder
        folder = self.output_dir / "model"
        if folder.exists():
            shutil.rmtree(folder)
        for model in self.experts.values():
            model.eval()
        self.pipe.save_pretrained(str(folder), safe_serialization=True)
        card = {
            "format": 1,
            "name": f"HoloCine trained by engine.training ({self.output_dir.name})",
            "holocine_experts": True,
            "attention": self.pipe.shot_attention.mode,
            "attention_summaries": self.pipe.shot_attention.summaries,
            "window_cross_attention": self.pipe.shot_attention.windows,
            # Caption dropout trained the unconditional pass on the empty prompt: CFG's negative prompt.
            "defaults": {**self._defaults(), "negative_prompt": ""},
            "preview": {
                "rgb_factors": [[round(v, 6) for v in row] for row in self.pipe.previewer.factors.tolist()],
                "rgb_bias": [round(v, 6) for v in self.pipe.previewer.bias.tolist()],
            },
            "training": {"steps": self.step, "config": self.config.to_dict()},
        }
        (folder / MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return folder

    def _defaults(self) -> dict:
        """The loaded card's defaults (a fine-tuned model keeps its size and CFG), with the size
        and timing of the first validation scene, which is what training showed it."""
        defaults = {**asdict(self.pipe.defaults), "picture_hold": self.picture_hold}
        scenes = [SceneSpec.from_dict(raw) for raw in self.config.validation.scenes]
        if scenes:
            first = scenes[0]
            defaults.update(
                height=first.height or defaults["height"],
                width=first.width or defaults["width"],
                num_frames=first.layout(defaults["num_frames"]).num_frames,
                fps=first.fps or defaults["fps"],
            )
        return defaults


def train(config_path: Path) -> Path:
    """Run the training a config file describes; returns what it exported."""
    return Trainer(TrainConfig.from_file(config_path)).run()
