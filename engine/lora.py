"""LoRAs on both Wan2.2 experts: draft-speed step distillation, style or character LoRAs.

Wan2.2 A14B LoRAs ship as a pair (one file per expert, e.g. the Lightning step-distillation
LoRAs) in diffusers' key format or the original Wan one; diffusers' Wan LoRA loader reads
both and puts them into peft adapters on the experts. Adapters stay loaded; each render
chooses which are active and how strongly, so switching a draft LoRA on or off costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsError

# Step-distillation LoRAs (e.g. Wan2.2 Lightning) are trained for a few steps without CFG.
DRAFT_STEPS = 4
DRAFT_GUIDANCE = 1.0


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA pair: `high_noise` for the high-noise expert, `low_noise` (default: the same file) for the other."""

    name: str
    high_noise: str
    low_noise: str | None = None

    def files(self) -> tuple[Path, Path]:
        high = Path(self.high_noise).expanduser()
        low = Path(self.low_noise).expanduser() if self.low_noise else high
        for field, path in (("lora.high_noise", high), ("lora.low_noise", low)):
            if not path.is_file():
                raise WeightsError(
                    f"{field}: no LoRA file at {path} (a .safetensors in diffusers or original Wan keys)"
                )
        return high, low


def parse_lora(text: str) -> LoraSpec:
    """`NAME=HIGH.safetensors[,LOW.safetensors]`, as a command line names a LoRA pair to load."""
    name, separator, files = text.partition("=")
    paths = [part.strip() for part in files.split(",")] if separator else []
    if not name.strip() or not paths or not paths[0] or len(paths) > 2 or not all(paths):
        raise WeightsError(f"lora: {text!r} should read NAME=HIGH.safetensors or NAME=HIGH.safetensors,LOW.safetensors")
    return LoraSpec(name.strip(), paths[0], paths[1] if len(paths) == 2 else None)


def load_lora(pipe, spec: LoraSpec) -> None:
    """Load `spec` as adapter `spec.name` onto both experts (inactive until a render names it)."""
    if not spec.name.isidentifier():
        raise WeightsError(f"lora.name: {spec.name!r} must be a plain identifier (letters, digits, _)")
    if spec.name in loaded_loras(pipe):
        raise WeightsError(f"lora.name: a LoRA named {spec.name!r} is already loaded")
    high, low = spec.files()
    for path, kwargs in ((high, {}), (low, {"load_into_transformer_2": True})):
        if kwargs and pipe.transformer_2 is None:
            break
        try:
            pipe.load_lora_weights(str(path), adapter_name=spec.name, **kwargs)
        except (ValueError, KeyError, RuntimeError, OSError) as error:
            if spec.name in loaded_loras(pipe):
                pipe.delete_adapters([spec.name])
            raise WeightsError(
                f"lora: {path} does not fit this model's experts ({type(error).__name__}: {error})"
            ) from error
    pipe.disable_lora()


def loaded_loras(pipe) -> list[str]:
    adapters = pipe.get_list_adapters() if hasattr(pipe, "get_list_adapters") else {}
    return sorted({name for names in adapters.values() for name in names})


def check_loras(pipe, names: Iterable[str]) -> list[str]:
    """Refuse a render that names a LoRA this pipeline has not loaded; returns the loaded ones."""
    known = loaded_loras(pipe)
    for name in names:
        if name not in known:
            raise WeightsError(f"loras: {name!r} is not loaded; loaded: {', '.join(known) or 'none'}")
    return known


def activate_loras(pipe, strengths: dict[str, float]) -> None:
    """Make exactly these adapters active at these strengths (none: plain experts)."""
    known = check_loras(pipe, strengths)
    if not known:
        return
    if not strengths:
        pipe.disable_lora()
        return
    pipe.enable_lora()
    pipe.set_adapters(list(strengths), adapter_weights=list(strengths.values()))
