"""Finding and loading weights: a Wan2.2-T2V-A14B diffusers directory plus HoloCine's DiTs.

The real model is a Wan2.2 install (tokenizer, umT5, VAE, two experts) whose two experts
are replaced by HoloCine's fine-tuned DiTs, shipped in the ORIGINAL Wan key naming as
`HoloCine_dit/{full,sparse}/{variant}_{high,low}_noise.safetensors`. The shipped tiny
checkpoint has exactly that layout and goes through exactly this code.

A weights folder may carry a `holocine.json` model card (name, notice, default size and
timing, preview projection); without one the real model's published defaults apply.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import AutoTokenizer, UMT5EncoderModel

from .attention import AttentionMode
from .attention.context import ATTENTION_MODES
from .errors import SceneValidationError, WeightsError
from .memory import MemoryMode, MemoryPlan, apply_memory_plan, plan_memory
from .pipeline import PICTURE_HOLDS, HoloCinePipeline, ModelDefaults
from .preview import LatentPreviewer

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_WEIGHTS = REPO_ROOT / "assets" / "tiny-holocine"  # random weights, real layout: tests and code paths
TOY_WEIGHTS = REPO_ROOT / "assets" / "toy-holocine"  # trained on the toy world: what a new user sees
DEFAULT_WEIGHTS = TOY_WEIGHTS
BASE_HUB_ID = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
HOLOCINE_HUB_ID = "hlwang06/HoloCine"
DIT_FOLDER = "HoloCine_dit"
MODEL_CARD = "holocine.json"
WEIGHTS_ENV = "HOLOCINE_WEIGHTS"

Variant = Literal["sparse", "full"]
VARIANTS: tuple[Variant, ...] = ("sparse", "full")


@dataclass(frozen=True)
class WeightsSpec:
    """Where the weights come from.

    base: a Wan2.2-T2V-A14B diffusers directory or hub id.
    dit: a folder (or hub id) holding `full/` and `sparse/` HoloCine DiTs; "auto" looks for
         `<base>/HoloCine_dit`; "none" keeps the transformers of the base directory.
    variant: which DiT pair to load; None = sparse when present, else full.
    """

    base: str = str(DEFAULT_WEIGHTS)
    dit: str = "auto"
    variant: Variant | None = None

    @classmethod
    def from_env(cls, weights: str | None = None, dit: str = "auto", variant: Variant | None = None) -> WeightsSpec:
        """`weights` argument, else $HOLOCINE_WEIGHTS, else the shipped toy-world model."""
        return cls(base=weights or os.environ.get(WEIGHTS_ENV) or str(DEFAULT_WEIGHTS), dit=dit, variant=variant)


@dataclass(frozen=True)
class ModelCard:
    """holocine.json. `holocine_experts`: the folder's own transformer(s) are HoloCine DiTs (a model
    trained by `engine.training`), so no HoloCine_dit folder is needed; `attention`: their mode."""

    name: str
    notice: str | None
    random_weights: bool
    defaults: ModelDefaults
    previewer: LatentPreviewer = field(repr=False)
    holocine_experts: bool = False
    attention: AttentionMode | None = None
    attention_summaries: bool = True  # False: a model trained as the "no summaries" ablation
    window_cross_attention: bool = True  # False: a model trained as the "no window cross-attention" ablation

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        path = folder / MODEL_CARD
        if not path.exists():
            return cls(folder.name, None, False, ModelDefaults(), LatentPreviewer.wan21())
        try:
            card = json.loads(path.read_text())
            defaults = ModelDefaults(**card.get("defaults", {}))
            guidance = defaults.guidance_scale
            if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or guidance < 0:
                raise ValueError(f"defaults.guidance_scale must be a number >= 0, got {guidance!r}")
            if defaults.picture_hold not in PICTURE_HOLDS:
                raise ValueError(f"defaults.picture_hold must be one of {', '.join(PICTURE_HOLDS)}")
            preview = card.get("preview")
            previewer = (
                LatentPreviewer(preview["rgb_factors"], preview["rgb_bias"]) if preview else LatentPreviewer.wan21()
            )
            attention = card.get("attention")
            if attention is not None and attention not in ATTENTION_MODES:
                raise ValueError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {attention!r}")
            return cls(
                card["name"],
                card.get("notice"),
                bool(card.get("random_weights", False)),
                defaults,
                previewer,
                bool(card.get("holocine_experts", False)),
                attention,
                bool(card.get("attention_summaries", True)),
                bool(card.get("window_cross_attention", True)),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise WeightsError(f"{path} is not a valid model card: {error}") from error


@dataclass(frozen=True)
class EngineInfo:
    """What is loaded and how it runs; shown by the CLI, the studio and every manifest."""

    model_name: str
    notice: str | None
    random_weights: bool
    base: str
    dit: str | None
    variant: Variant | None
    device: str
    dtype: str
    memory: MemoryPlan
    attention_mode: AttentionMode
    sparse_backend: str
    compiled: bool = False

    def to_dict(self) -> dict:
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {**values, "memory": self.memory.to_dict()}

    def describe(self) -> str:
        lines = [
            f"model: {self.model_name}",
            f"weights: {self.base}" + (f" + HoloCine DiT {self.variant} from {self.dit}" if self.dit else ""),
            f"device: {self.device} ({self.dtype}, memory {self.memory.mode}: offload {self.memory.offload}"
            + (", fp8 weights" if self.memory.fp8_weights else "")
            + f"; {self.memory.reason})",
            f"attention: {self.attention_mode} (sparse backend {self.sparse_backend})"
            + (", blocks compiled" if self.compiled else ""),
        ]
        if self.notice:
            lines.insert(1, f"NOTE: {self.notice}")
        return "\n".join(lines)


def resolve_folder(reference: str, what: str, allow_patterns: list[str] | None = None) -> Path:
    """A local folder as is; otherwise a Hugging Face hub id, downloaded (or found in the cache).

    With no network the download fails at once with what to put where, never hangs.
    """
    path = Path(reference).expanduser()
    if path.is_dir():
        return path
    looks_like_hub_id = reference.count("/") == 1 and not reference.startswith((".", "/", "~")) and not path.exists()
    if not looks_like_hub_id:
        raise WeightsError(f"{what}: no such folder {reference!r}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(reference, allow_patterns=allow_patterns, etag_timeout=10))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise WeightsError(
            f"{what}: could not download {reference!r} from the Hugging Face Hub ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no details'}). On a machine with network run "
            f"`hf download {reference} --local-dir DIR`, copy DIR here and pass its path instead."
        ) from error


def dit_files(dit_folder: Path, variant: Variant) -> tuple[Path, Path]:
    folder = dit_folder / variant
    return folder / f"{variant}_high_noise.safetensors", folder / f"{variant}_low_noise.safetensors"


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise WeightsError(f"device: {device!r} is not a torch device ({error})") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise WeightsError("device: 'cuda' was asked for but torch sees no CUDA GPU; use --device cpu")
    return resolved


def _load_component(loader, folder: Path, what: str, **kwargs):
    try:
        return loader(folder, **kwargs)
    except (OSError, ValueError, RuntimeError, json.JSONDecodeError) as error:
        raise WeightsError(f"{what} in {folder} could not be loaded: {error}") from error


def _load_dit(file: Path, config_folder: Path, dtype: torch.dtype) -> WanTransformer3DModel:
    """An original-key HoloCine DiT, converted by diffusers' own Wan key mapping."""
    if not file.is_file():
        raise WeightsError(f"HoloCine DiT file missing: {file}")
    try:
        model = WanTransformer3DModel.from_single_file(str(file), config=str(config_folder), torch_dtype=dtype)
    except Exception as error:  # safetensors and diffusers raise many types for a bad file
        raise WeightsError(
            f"HoloCine DiT {file} could not be loaded (corrupt or not a Wan T2V DiT?): {error}"
        ) from error
    keep_fp32 = model._keep_in_fp32_modules or []
    if dtype != torch.float32:
        # from_single_file casts everything; restore the modules diffusers keeps in float32.
        for name, module in model.named_modules():
            if any(part in keep_fp32 for part in name.split(".")):
                module.float()
    return model


def load_text_and_vae(base: Path, dtype: torch.dtype) -> tuple:
    """The tokenizer, umT5 encoder (in `dtype`) and VAE (float32, tiled) of a weights folder."""
    tokenizer = _load_component(AutoTokenizer.from_pretrained, base / "tokenizer", "tokenizer")
    if not getattr(tokenizer, "is_fast", False):
        raise WeightsError(f"tokenizer in {base / 'tokenizer'} must be a fast tokenizer (tokenizer.json) for offsets")
    text_encoder = _load_component(UMT5EncoderModel.from_pretrained, base / "text_encoder", "text_encoder", dtype=dtype)
    vae = _load_component(AutoencoderKLWan.from_pretrained, base / "vae", "vae", torch_dtype=torch.float32)
    vae.enable_tiling()
    return tokenizer, text_encoder, vae


def load_pipeline(
    spec: WeightsSpec | None = None,
    device: str = "auto",
    dtype: torch.dtype | None = None,
    memory: MemoryMode = "auto",
    compile_blocks: bool = False,
    attention: AttentionMode | None = None,
    sparse_backend: str = "auto",
) -> tuple[HoloCinePipeline, EngineInfo]:
    """Load a ready-to-render pipeline and describe it. bf16 on a GPU, float32 on the CPU.

    `memory` is a preset of `engine.memory` (auto: by the card's free memory). `compile_blocks`
    compiles each transformer block with torch.compile (diffusers' regional compilation): the
    first render of each new shot layout pays the compile, later ones run faster.
    """
    spec = spec or WeightsSpec.from_env()
    if attention is not None and attention not in ATTENTION_MODES:
        raise SceneValidationError("attention", f"must be one of {', '.join(ATTENTION_MODES)}, got {attention!r}")
    if spec.variant is not None and spec.variant not in VARIANTS:
        raise WeightsError(f"variant: must be one of {', '.join(VARIANTS)}, got {spec.variant!r}")
    target = pick_device(device)
    plan = plan_memory(memory, target)
    dtype = dtype or (torch.bfloat16 if target.type == "cuda" else torch.float32)

    # With HoloCine DiTs, the base experts' tens of GB are never read: fetch only their configs.
    experts = (
        ["transformer/*", "transformer_2/*"]
        if spec.dit == "none"
        else ["transformer/config.json", "transformer_2/config.json"]
    )
    base = resolve_folder(
        spec.base,
        "weights",
        allow_patterns=["*.json", "tokenizer/*", "text_encoder/*", "vae/*", *experts, f"{DIT_FOLDER}/**"],
    )
    card = ModelCard.read(base)

    dit_folder: Path | None
    if spec.dit == "none" or (spec.dit == "auto" and card.holocine_experts and not (base / DIT_FOLDER).is_dir()):
        dit_folder = None
    elif spec.dit == "auto":
        dit_folder = base / DIT_FOLDER
        if not dit_folder.is_dir():
            raise WeightsError(
                f"no HoloCine DiTs in {base}: put the folder {DIT_FOLDER}/ (from {HOLOCINE_HUB_ID}, with full/ and "
                f"sparse/ inside) there, pass --dit PATH_OR_HUB_ID, or --dit none to run the base Wan2.2 transformers"
            )
    else:
        # From the hub, fetch only the variant asked for (each pair is ~57 GB).
        wanted = spec.variant or "sparse"
        dit_folder = resolve_folder(spec.dit, "dit", allow_patterns=[f"{DIT_FOLDER}/{wanted}/*", f"{wanted}/*"])
        if (dit_folder / DIT_FOLDER).is_dir():
            dit_folder = dit_folder / DIT_FOLDER

    variant: Variant | None = None
    if dit_folder is not None:
        variant = spec.variant or ("sparse" if dit_files(dit_folder, "sparse")[0].exists() else "full")
        high, low = dit_files(dit_folder, variant)
        transformer = _load_dit(high, base / "transformer", dtype)
        transformer_2 = _load_dit(low, base / "transformer_2", dtype)
    else:
        transformer = _load_component(
            WanTransformer3DModel.from_pretrained, base / "transformer", "transformer", torch_dtype=dtype
        )
        transformer_2 = (
            _load_component(
                WanTransformer3DModel.from_pretrained, base / "transformer_2", "transformer_2", torch_dtype=dtype
            )
            if (base / "transformer_2").is_dir()
            else None
        )
    tokenizer, text_encoder, vae = load_text_and_vae(base, dtype)

    mode: AttentionMode = attention or card.attention or ("full" if variant in (None, "full") else "sparse")
    pipe = HoloCinePipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        transformer_2=transformer_2,
        attention_mode=mode,
    )
    apply_memory_plan(pipe, plan, target)
    if compile_blocks:
        for expert in (pipe.transformer, pipe.transformer_2):
            if expert is not None:
                expert.compile_repeated_blocks()
    pipe.set_attention(sparse_backend=sparse_backend)
    pipe.shot_attention.summaries = card.attention_summaries
    pipe.shot_attention.windows = card.window_cross_attention
    pipe.defaults = card.defaults
    pipe.previewer = card.previewer
    info = EngineInfo(
        model_name=card.name,
        notice=card.notice,
        random_weights=card.random_weights,
        base=str(base),
        dit=str(dit_folder) if dit_folder else None,
        variant=variant,
        device=str(target),
        dtype=str(dtype).removeprefix("torch."),
        memory=plan,
        attention_mode=pipe.shot_attention.mode,
        sparse_backend=pipe.shot_attention.sparse_backend,
        compiled=compile_blocks,
    )
    return pipe, info
