"""What a training run is: one JSON (or TOML) file, read into frozen dataclasses.

Every field has a default a researcher would pick, and a bad value is refused up front
with its dotted name (`timesteps.method`, `lora.rank`), before any weights load.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from ..errors import SceneValidationError

TimestepMethod = Literal["uniform", "logit_normal", "shifted"]
TrainingMode = Literal["lora", "full"]
Expert = Literal["high_noise", "low_noise"]
Precision = Literal["auto", "bf16", "fp32"]


class TrainingConfigError(SceneValidationError):
    """A training config value that cannot work; `field` is its dotted path in the config file."""


@dataclass(frozen=True)
class TimestepSampling:
    """How noise levels are drawn: uniform, logit-normal (SD3) or shifted uniform (as the sampler's shift)."""

    method: TimestepMethod = "shifted"
    shift: float = 3.0
    mean: float = 0.0
    std: float = 1.0


@dataclass(frozen=True)
class LoraTraining:
    """peft LoRA on the attention and FFN projections; diffusers' Wan key names."""

    rank: int = 16
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")


@dataclass(frozen=True)
class DataConfig:
    """Training clips: a folder of videos with JSON sidecars, or a Python scene generator.

    `generator` is "module:function"; called with `seed=` and `options` as keyword arguments
    (say, the shares of a mix of clip kinds), it yields objects with `spec()`
    (a SceneSpec), `render()` ((frames, H, W, 3) uint8) and, for an outline loss,
    `subject_mask()` ((frames, H, W) bool), like `engine.toyworld.toy_scenes`.
    `num_clips` of them are drawn and encoded once.
    """

    folder: str | None = None
    generator: str | None = None
    num_clips: int = 1000
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutlineLoss:
    """Extra loss weight near the subject's outline (1 = the plain MSE); needs clips with subject masks.

    A small subject's shape is a few percent of a frame-wide MSE; see `objective.outline_loss_weights`.
    """

    weight: float = 1.0
    radius_px: int = 2


@dataclass(frozen=True)
class ValidationConfig:
    """A render every `every` steps (0 = never) of each scene, with these sampler settings."""

    every: int = 0
    scenes: tuple[dict, ...] = ()
    steps: int = 20
    guidance_scale: float = 5.0
    shift: float = 5.0
    negative_prompt: str = ""  # the caption dropout's text: a new model's unconditional prompt
    seed: int = 0


@dataclass(frozen=True)
class NewModel:
    """A transformer built from scratch (full training of a small model): its config and expert count."""

    config: dict = field(default_factory=dict)
    experts: int = 1


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str
    weights: str
    dit: str = "auto"
    variant: Literal["sparse", "full"] | None = None
    new_model: NewModel | None = None
    mode: TrainingMode = "lora"
    experts: tuple[Expert, ...] = ("high_noise", "low_noise")
    attention: Literal["sparse", "full"] | None = None
    attention_summaries: bool = True  # False trains the paper's "sparse without summaries" ablation
    window_cross_attention: bool = True  # False trains its "no window cross-attention" ablation
    steps: int = 1000
    batch_size: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_schedule: Literal["constant", "cosine"] = "constant"
    schedule_steps: int | None = None  # the cosine's length when a run stops before its end (None: steps)
    grad_clip: float = 1.0
    ema_decay: float | None = None  # an exponential moving average of the weights; validation and export use it
    timesteps: TimestepSampling = field(default_factory=TimestepSampling)
    outline_loss: OutlineLoss = field(default_factory=OutlineLoss)
    boundary_ratio: float = 0.875
    caption_dropout: float = 0.1
    # How clips' held pictures enter training, and so the exported model's renders (its card):
    # "noised" like every other frame, or "clean" at every noise level with their tokens at
    # timestep 0, as Wan2.2 TI2V trains its first frame (see engine.conditioning);
    # None keeps the loaded model's, so a fine-tune never flips it unasked.
    picture_hold: str | None = None
    gradient_checkpointing: bool = False
    precision: Precision = "auto"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    lora: LoraTraining = field(default_factory=LoraTraining)
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "keep_checkpoints", "log_every"):
            if getattr(self, name) < 1:
                raise TrainingConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        if self.schedule_steps is not None and self.schedule_steps < self.steps:
            raise TrainingConfigError("schedule_steps", f"must be >= steps ({self.steps}), got {self.schedule_steps}")
        if self.learning_rate <= 0:
            raise TrainingConfigError("learning_rate", f"must be > 0, got {self.learning_rate}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise TrainingConfigError("ema_decay", f"must be in (0, 1) (or null for no EMA), got {self.ema_decay}")
        if not 0 <= self.caption_dropout < 1:
            raise TrainingConfigError("caption_dropout", f"must be in [0, 1), got {self.caption_dropout}")
        if self.picture_hold not in (None, "noised", "clean"):
            raise TrainingConfigError("picture_hold", f"must be noised or clean, got {self.picture_hold!r}")
        if not 0 < self.boundary_ratio < 1:
            raise TrainingConfigError("boundary_ratio", f"must be in (0, 1), got {self.boundary_ratio}")
        if not self.experts or len(set(self.experts)) != len(self.experts):
            raise TrainingConfigError("experts", f"must name high_noise and/or low_noise once each, got {self.experts}")
        if (self.data.folder is None) == (self.data.generator is None):
            raise TrainingConfigError("data", "give exactly one of data.folder or data.generator")
        if not isinstance(self.data.options, dict) or (self.data.options and self.data.generator is None):
            raise TrainingConfigError("data.options", "must be a table of a generator's keyword arguments")
        if self.data.generator is not None and ":" not in self.data.generator:
            raise TrainingConfigError("data.generator", f"must be 'module:function', got {self.data.generator!r}")
        if self.data.num_clips < 1:
            raise TrainingConfigError("data.num_clips", f"must be >= 1, got {self.data.num_clips}")
        if self.timesteps.shift <= 0 or self.timesteps.std <= 0:
            raise TrainingConfigError("timesteps", "shift and std must be > 0")
        if self.outline_loss.weight < 1:
            raise TrainingConfigError("outline_loss.weight", f"must be >= 1 (1 = off), got {self.outline_loss.weight}")
        if self.outline_loss.radius_px < 1:
            raise TrainingConfigError("outline_loss.radius_px", f"must be >= 1, got {self.outline_loss.radius_px}")
        if self.lora.rank < 1:
            raise TrainingConfigError("lora.rank", f"must be >= 1, got {self.lora.rank}")
        if self.new_model is not None:
            if self.mode != "full":
                raise TrainingConfigError("new_model", "a model built from scratch needs mode 'full'")
            if self.new_model.experts not in (1, 2):
                raise TrainingConfigError("new_model.experts", f"must be 1 or 2, got {self.new_model.experts}")
            if self.new_model.experts == 1 and self.experts != ("high_noise",):
                raise TrainingConfigError("experts", "a single-expert model trains one expert: ['high_noise']")
        if self.validation.every < 0:
            raise TrainingConfigError("validation.every", "must be >= 0 (0 = no validation renders)")

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        """Read a .json or .toml config (relative paths in it are relative to the working directory)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise TrainingConfigError("config", f"cannot read {path}: {error}") from error
        try:
            raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as error:
            raise TrainingConfigError("config", f"{path} is not valid {path.suffix[1:] or 'JSON'}: {error}") from error
        config = _build(cls, raw, "")
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


def _build(cls: type, raw: Any, prefix: str) -> Any:
    """Recursively turn a parsed mapping into `cls`, checking names and literal choices."""
    if not isinstance(raw, dict):
        raise TrainingConfigError(prefix.rstrip(".") or "config", f"must be a table/object, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TrainingConfigError(prefix + unknown[0], f"is not a setting; known: {', '.join(sorted(known))}")
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, prefix + name)
    try:
        return cls(**values)
    except TypeError as error:
        raise TrainingConfigError(prefix.rstrip(".") or "config", str(error)) from error


def _coerce(hint: Any, value: Any, name: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if is_dataclass(hint):
        return _build(hint, value, name + ".")
    if origin is Literal:
        if value not in args:
            raise TrainingConfigError(name, f"must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TrainingConfigError(name, f"must be a list, got {value!r}")
        return tuple(_coerce(args[0], item, f"{name}[{i}]") for i, item in enumerate(value))
    if args and type(None) in args:  # Optional[X]
        return None if value is None else _coerce(next(a for a in args if a is not type(None)), value, name)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise TrainingConfigError(name, f"must be {hint.__name__}, got {value!r}")
    return value


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
