"""Build the tiny random-weight HoloCine checkpoint used by tests and demos.

    python scripts/build_tiny_checkpoint.py --out assets/tiny-holocine

The output has the layout of a real install, so the engine runs its real code path on it:
a Wan2.2-T2V-A14B diffusers directory (tokenizer, umT5 text encoder, Wan VAE, scheduler
and the two base experts), the four HoloCine DiT files in the ORIGINAL Wan key naming
(as the released checkpoints are), and `holocine.json`, the model card the engine reads.

Every byte is a function of this file and the library versions: weights come from seeded
generators (uniform draws turned normal in float64: torch's float32 normal sampler has a
vectorised path whose results depend on the CPU's instruction set), the tokenizer is
trained on a built-in corpus and canonicalised, and the preview fit decodes in float64 and
rounds what it stores.
Re-running the script must reproduce the committed asset exactly; a test checks that.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import string
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # only when run as `python scripts/...`: find `engine`
    sys.path.insert(0, str(REPO_ROOT))

from diffusers import (  # noqa: E402
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import (  # noqa: E402
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel  # noqa: E402

from engine.preview import fit_rgb_projection, projection_r2  # noqa: E402
from engine.wan_keys import to_original_wan_keys  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "assets" / "tiny-holocine"
BUILD_COMMAND = "python scripts/build_tiny_checkpoint.py --out assets/tiny-holocine"

VOCAB_SIZE = 1000
SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2, as in umT5
METASPACE = "\u2581"
MAX_TOKENS = 512
_FALLBACK_WINDOW = 0.01  # > 1e-4 x the ~95 characters the trainer may have to re-add

TEXT_DIM = 32
TRANSFORMER_CONFIG = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": TEXT_DIM,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 32,
}
BOUNDARY_RATIO = 0.875

# One seed per component, so changing one component never changes another.
SEEDS = {
    "text_encoder": 1,
    "vae": 2,
    "transformer": 3,
    "transformer_2": 4,
    "full_high_noise": 5,
    "full_low_noise": 6,
    "sparse_high_noise": 7,
    "sparse_low_noise": 8,
    "preview_fit": 9,
    "preview_holdout": 10,
}
HOLOCINE_DITS = {
    "full_high_noise": Path("HoloCine_dit/full/full_high_noise.safetensors"),
    "full_low_noise": Path("HoloCine_dit/full/full_low_noise.safetensors"),
    "sparse_high_noise": Path("HoloCine_dit/sparse/sparse_high_noise.safetensors"),
    "sparse_low_noise": Path("HoloCine_dit/sparse/sparse_low_noise.safetensors"),
}

DEFAULTS = {"height": 96, "width": 160, "num_frames": 33, "fps": 8}
LATENT_CHANNELS = 16
VAE_RESIDUAL_SCALE = 0.3
TEMPORAL_FACTOR = 4
SPATIAL_FACTOR = 8
NOTICE = (
    "Tiny random-weight HoloCine model for tests and demos: same architecture and code path "
    "as the real 14B model, but its output is not meaningful imagery."
)


# --------------------------------------------------------------------------- corpus

_SHOT_SIZES = [
    "Extreme close-up",
    "Close-up",
    "Medium close-up",
    "Medium shot",
    "Medium long shot",
    "Full shot",
    "Wide shot",
    "Extreme wide shot",
    "Over-the-shoulder shot",
    "Two-shot",
    "Insert shot",
    "Point-of-view shot",
    "Establishing shot",
    "Aerial shot",
    "Low-angle shot",
    "High-angle shot",
    "Dutch angle shot",
    "Profile shot",
]
_CAMERA = [
    "the camera pans slowly to the left",
    "the camera pans to the right",
    "the camera tilts up",
    "the camera tilts down",
    "the camera dollies in",
    "the camera pulls back",
    "the camera tracks alongside",
    "the camera cranes up",
    "a slow push-in",
    "a handheld camera follows closely",
    "the camera holds still",
    "the camera orbits around",
    "the camera zooms in",
    "a quick whip pan",
    "a rack focus shifts to the background",
    "the camera rises above the crowd",
    "a steadicam glides forward",
    "the frame stays locked off",
]
_CHARACTERS = [
    "a young woman with short red hair",
    "an old fisherman in a yellow raincoat",
    "a tall man wearing a grey suit",
    "a little girl holding a paper kite",
    "a tired detective with a loose tie",
    "a nurse in a pale blue uniform",
    "a street musician with a battered guitar",
    "a chef in a white apron",
    "a soldier covered in dust",
    "a grandmother knitting a scarf",
    "a boy on a rusty bicycle",
    "a pilot in a leather jacket",
    "a dancer in a flowing purple dress",
    "a farmer with sunburnt hands",
    "a scientist in thick glasses",
    "a teenager with headphones",
]
_PLACES = [
    "in a crowded night market",
    "on a quiet beach at dawn",
    "inside a dim jazz bar",
    "on a rainy city street",
    "in a sunlit kitchen",
    "at an empty train station",
    "in a snowy pine forest",
    "on the roof of a tall building",
    "inside a hospital corridor",
    "in a desert canyon",
    "on a wooden fishing boat",
    "in a cluttered laboratory",
    "in a field of golden wheat",
    "inside an old library",
    "at a busy airport gate",
    "in a neon-lit alley",
    "beside a frozen lake",
    "in a small village square",
]
_ACTIONS = [
    "turns to look over the shoulder",
    "smiles and waves",
    "walks slowly toward the door",
    "runs through the rain",
    "reads a letter and frowns",
    "lights a candle",
    "pours a cup of tea",
    "stares out of the window",
    "laughs at a joke",
    "picks up a ringing phone",
    "drops a glass that shatters",
    "opens a wooden box",
    "climbs the stairs",
    "sits down on a bench",
    "whispers a secret",
    "hugs an old friend",
    "writes in a notebook",
    "closes the heavy curtains",
]
_COLOURS = [
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
    "golden",
    "silver",
    "teal",
    "crimson",
    "amber",
]
_LIGHT = [
    "soft morning light",
    "harsh midday sun",
    "warm golden hour light",
    "cold blue moonlight",
    "flickering candlelight",
    "neon reflections",
    "dramatic backlight",
    "overcast daylight",
    "low-key lighting with deep shadows",
    "bright studio lighting",
]
_MOODS = [
    "calm",
    "tense",
    "joyful",
    "melancholic",
    "mysterious",
    "romantic",
    "chaotic",
    "hopeful",
]
_OBJECTS = [
    "a cracked mirror",
    "a vintage typewriter",
    "a bouquet of wilted roses",
    "a silver pocket watch",
    "a flickering lantern",
    "a stack of old newspapers",
    "a red umbrella",
    "a chessboard",
    "a bowl of ripe oranges",
    "a torn photograph",
    "a brass telescope",
    "a suitcase with stickers",
    "a vinyl record player",
    "a bottle of wine",
    "a pair of muddy boots",
    "a wooden violin",
]
_WEATHER = [
    "light snow is falling",
    "thunder rumbles far away",
    "a thick fog rolls in",
    "the rain has just stopped",
    "a strong wind bends the trees",
    "the sky is clear and starry",
    "heat shimmers above the road",
    "autumn leaves swirl in the gutter",
]
_EXTRA = [
    "The wind moves the leaves and dust drifts through the air.",
    "Rain streaks down the glass while cars pass in the distance.",
    "A dog barks twice, then the street falls silent again.",
    "Steam rises from the cups on the table.",
    "The film grain is fine and the colours are slightly faded, like 35mm film.",
    "Shallow depth of field, the background is a soft blur.",
    "Cinematic, realistic, high detail, natural motion, 24 frames per second.",
    "The scene cuts from the face to the hands, then back to the face.",
    "Numbers on the clock read 10:45, and the calendar shows May 3, 1987.",
    "She says: \"Wait for me!\" and he answers, 'I will.'",
    "Price tags show $20, 15% off, item #7 & #8; email: info@example.com (open 9-5).",
    "Symbols: ~ ` ! ^ * _ + = { } | \\ / < > ? ; : , . [ ] ( ).",
    "Silhouettes cross a bridge against an enormous orange sunset.",
    "Waves crash against black volcanic rocks and spray glitters in the air.",
    "A crowd of commuters hurries past a mural of tropical birds.",
    "Fireworks bloom over the harbour, reflected in the still water.",
    "An elevator door slides open on an abandoned office floor.",
    "Candles gutter on a birthday cake as children sing and clap.",
    "The detective spreads photographs across the desk and circles a face.",
    "Horses gallop across the meadow, their manes catching the light.",
    "A lone astronaut floats beside the station, Earth glowing below.",
    "The orchestra tunes up while the conductor adjusts his cufflinks.",
    "Smoke curls from a chimney above a cottage with green shutters.",
    "A waitress refills coffee at a diner counter lined with chrome stools.",
    "Lightning reveals a castle on the cliff for a single instant.",
    "Two strangers share an umbrella at a bus stop and exchange shy glances.",
    "Graffiti covers the subway car as it rattles into the tunnel.",
    "A cat jumps from the windowsill and knocks over a plant pot.",
    "Monks in saffron robes climb the temple steps in silence.",
    "Sparks fly as a welder cuts through a steel beam in the shipyard.",
    "The camera glides over rice terraces shrouded in morning mist.",
    "An elderly couple dances slowly in their living room to a scratchy record.",
    "Jellyfish pulse through dark water, lit by a diver's torch.",
    "A boxer wraps his hands in the locker room before the fight.",
    "Paper lanterns drift upward into the night sky above the river.",
    "A scientist peers into a microscope while machines beep quietly.",
    "Snowflakes settle on the shoulders of a man waiting outside the theatre.",
    "A girl chases pigeons across a cobblestone piazza near a fountain.",
    "Headlights sweep across the wallpaper of a motel room.",
    "The carpenter planes a plank, curls of wood falling to the floor.",
    "Sunflowers turn toward the light in a time-lapse of the afternoon.",
    "Tension builds as the clock ticks; nobody in the courtroom moves.",
    "Match cut: the spinning coin becomes the spinning wheel of a bicycle.",
    "Slow motion: droplets hang in the air as the glass hits the tiles.",
    "Fade in on a misty harbour; fade out on an empty chair.",
    "Tracking shot through a kitchen full of shouting cooks and clattering pans.",
    "Crane shot revealing a stadium packed with cheering fans waving flags.",
    "Reverse shot: her expression shifts from surprise to quiet anger.",
    "Cutaway to trembling fingers gripping the steering wheel.",
    "The painter mixes ochre, cobalt and vermilion on a wooden palette.",
    "Children splash in puddles wearing bright rubber boots.",
    "The violinist closes her eyes, the bow trembling on the last note.",
    "A fox slips between birch trunks, breath steaming in the frost.",
    "Bicycles lean against a railing by the canal in Amsterdam.",
    "The mechanic wipes grease from his forehead and grins.",
    "Behind the counter, jars of sweets glow like jewels.",
    "Archival footage look: scratches, flicker and a sepia tint.",
    "Anamorphic lens flares streak across the windshield at night.",
]


def _cycle(items: list[str], index: int, stride: int) -> str:
    """Deterministic pseudo-shuffled pick: no RNG, so the corpus can never drift."""
    return items[(index * stride + stride // 2) % len(items)]


def _scene_prompt(index: int) -> str:
    """One HoloCine-format prompt, shaped like the prompts the engine will build."""
    num_shots = 1 + index % 9
    global_caption = (
        f"[character{1 + index % 9}] is {_cycle(_CHARACTERS, index, 5)} and "
        f"[character{1 + (index + 4) % 9}] is {_cycle(_CHARACTERS, index, 7)}, "
        f"{_cycle(_PLACES, index, 11)}, {_cycle(_LIGHT, index, 3)}, a {_cycle(_MOODS, index, 5)} mood. "
        f"This scene contains {num_shots} shot{'s' if num_shots > 1 else ''}."
    )
    shots = [
        f"{_cycle(_SHOT_SIZES, index + shot, 7)} of [character{1 + (index + shot) % 9}], who "
        f"{_cycle(_ACTIONS, index + shot, 5)}; {_cycle(_CAMERA, index + shot, 11)}."
        for shot in range(num_shots)
    ]
    return f"[global caption] {global_caption} [per shot caption] " + " [shot cut] ".join(shots)


def training_corpus() -> list[str]:
    """Built-in English corpus of cinematic scene descriptions the tokenizer learns from."""
    sentences = [_scene_prompt(index) for index in range(160)]
    for index in range(240):
        sentences.append(
            f"{_cycle(_SHOT_SIZES, index, 5)}: {_cycle(_CHARACTERS, index, 3)} in a "
            f"{_cycle(_COLOURS, index, 7)} coat {_cycle(_ACTIONS, index, 7)} "
            f"{_cycle(_PLACES, index, 5)} under {_cycle(_LIGHT, index, 7)}, while "
            f"{_cycle(_CAMERA, index, 5)}."
        )
    for index in range(120):
        sentences.append(
            f"{_cycle(_SHOT_SIZES, index, 11)} of {_cycle(_OBJECTS, index, 3)} on a "
            f"{_cycle(_COLOURS, index, 5)} table; {_cycle(_WEATHER, index, 3)} outside and "
            f"{_cycle(_CHARACTERS, index, 7)} {_cycle(_ACTIONS, index, 11)}."
        )
    sentences.extend(_EXTRA)
    sentences.append(" ".join(string.ascii_letters + string.digits + string.punctuation))
    return sentences


# --------------------------------------------------------------------------- tokenizer


def _train_unigram() -> list[tuple[str, float]]:
    """Unigram pieces and scores, made reproducible.

    The trainer is not: its sums run in thread and hash-map order, so scores wobble in the
    last bits (hence the rounding), and characters it must keep but pruned are re-added with
    scores min_score, min_score + 1e-4, ... handed out in hash-set order. Those characters
    (every single character within `_FALLBACK_WINDOW` of the lowest score) all get the lowest
    score, and pieces are sorted by (score, text) after the special tokens (ids 0, 1, 2).
    """
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = _normalizer()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    # Every printable ASCII character stays in the vocabulary, so ASCII text never hits <unk>.
    alphabet = [chr(code) for code in range(0x21, 0x7F)] + [METASPACE]
    trainer = trainers.UnigramTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        unk_token="<unk>",
        initial_alphabet=alphabet,
        max_piece_length=16,
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(), trainer=trainer)
    trained = [
        (piece, round(score, 6))
        for piece, score in json.loads(tokenizer.to_str())["model"]["vocab"]
        if piece not in SPECIAL_TOKENS
    ]
    lowest = min(score for _, score in trained)
    canonical = [
        (piece, lowest if len(piece) == 1 and score < lowest + _FALLBACK_WINDOW else score) for piece, score in trained
    ]
    canonical.sort(key=lambda item: (-item[1], item[0]))
    return [(piece, 0.0) for piece in SPECIAL_TOKENS] + canonical


def _normalizer() -> normalizers.Normalizer:
    """NFKC, and any whitespace run becomes one space, as umT5's sentencepiece normaliser does."""
    return normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Train a umT5-shaped Unigram tokenizer in-process (a sentencepiece file needs the net)."""
    unk_id = SPECIAL_TOKENS.index("<unk>")
    tokenizer = Tokenizer(models.Unigram(_train_unigram(), unk_id=unk_id, byte_fallback=False))
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.normalizer = _normalizer()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", SPECIAL_TOKENS.index("</s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_TOKENS,
    )


# --------------------------------------------------------------------------- weights


def seeded_normal(shape: torch.Size, std: float, generator: torch.Generator) -> torch.Tensor:
    """Float32 N(0, std^2) samples that are bit-identical on every CPU (Box-Muller in float64)."""
    u1 = torch.rand(shape, generator=generator, dtype=torch.float64)
    u2 = torch.rand(shape, generator=generator, dtype=torch.float64)
    normal = torch.sqrt(-2.0 * torch.log1p(-u1)) * torch.cos(2.0 * math.pi * u2)
    return (normal * std).to(torch.float32)


def dense_init(name: str, param: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Seeded value for a parameter of the text encoder or a transformer.

    Matrices get std 1/sqrt(fan_in) so activations keep unit scale through the tiny nets (a
    fixed 0.02 would shrink every signal ~10x per layer and make outputs nearly independent
    of the caption); embeddings get 1 like T5; modulation tables 1/sqrt(dim) like the original
    Wan init; biases 0.02; norm gains 1 and norm biases 0, their identity values.
    """
    leaf = name.rsplit(".", 1)[-1]
    if "norm" in name or leaf == "gamma":
        return torch.ones_like(param) if leaf in ("weight", "gamma") else torch.zeros_like(param)
    if leaf == "scale_shift_table":
        return seeded_normal(param.shape, param.shape[-1] ** -0.5, generator)
    if "shared" in name or "embed_tokens" in name:
        return seeded_normal(param.shape, 1.0, generator)
    if param.ndim >= 2:
        return seeded_normal(param.shape, (param.numel() // param.shape[0]) ** -0.5, generator)
    return seeded_normal(param.shape, 0.02, generator)


def vae_init(name: str, param: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Seeded value for a VAE parameter, chosen so the decoder is local like a trained one.

    Fully random kernels smear each latent voxel over its 27 neighbours and the two random
    halves of each temporal upsampler cancel, so decoded colours would be unrelated to the
    latent under them and no live preview could track them. Here every kernel keeps only its
    current-frame centre tap, each temporal upsampler repeats frames, and residual branches
    are damped by `VAE_RESIDUAL_SCALE`: colour becomes a smooth, still nonlinear, function of
    the latent voxel above it.
    """
    if param.ndim < 4:
        return dense_init(name, param, generator)
    kernel = param.shape[2:]
    # Wan's causal convolutions pad in front, so the current frame is the last temporal tap.
    if len(kernel) == 3:
        centre = (slice(None), slice(None), kernel[0] - 1, kernel[1] // 2, kernel[2] // 2)
    else:
        centre = (slice(None), slice(None), *(size // 2 for size in kernel))
    taps = torch.zeros_like(param)
    out_channels, in_channels = param.shape[:2]
    if name.endswith("time_conv.weight"):
        taps[centre] = torch.eye(in_channels).repeat(out_channels // in_channels, 1)
        return taps
    scale = VAE_RESIDUAL_SCALE if name.endswith(("conv2.weight", "proj.weight")) else 1.0
    taps[centre] = seeded_normal(param.shape[:2], scale * in_channels**-0.5, generator)
    return taps


Init = Callable[[str, torch.Tensor, torch.Generator], torch.Tensor]


@torch.no_grad()
def reinitialise(model: torch.nn.Module, seed: int, init: Init) -> None:
    """Overwrite every parameter with `init`'s seeded values, in a fixed order, so the build
    never depends on torch's global RNG or on a library's default init."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        param.copy_(init(name, param, generator))


def build_text_encoder(vocab_size: int) -> UMT5EncoderModel:
    """Tiny umT5 encoder whose text_dim matches the transformers' `text_dim`."""
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=32,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
    )
    model = UMT5EncoderModel(config)
    reinitialise(model, SEEDS["text_encoder"], dense_init)
    return model.eval()


def build_vae() -> AutoencoderKLWan:
    """Tiny Wan VAE with the real latent layout: 16 channels, x4 temporal, x8 spatial."""
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    reinitialise(vae, SEEDS["vae"], vae_init)
    return vae.eval()


def build_transformer(seed: int) -> WanTransformer3DModel:
    """Tiny Wan DiT with the real block structure (self-attn, cross-attn, ffn, modulation)."""
    model = WanTransformer3DModel(**TRANSFORMER_CONFIG)
    reinitialise(model, seed, dense_init)
    return model.eval()


# --------------------------------------------------------------------------- preview fit


@torch.no_grad()
def preview_samples(vae: AutoencoderKLWan, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised latent voxels (N, 16) and the mean decoded colour of their pixels (N, 3).

    Decodes in float64 so the fitted numbers are the same on every machine. Latent frame 0
    covers pixel frame 0 and latent frame j >= 1 covers pixel frames 4j-3..4j; each latent
    pixel covers an 8x8 pixel block.
    """
    frames = (DEFAULTS["num_frames"] - 1) // TEMPORAL_FACTOR + 1
    height, width = DEFAULTS["height"] // SPATIAL_FACTOR, DEFAULTS["width"] // SPATIAL_FACTOR
    generator = torch.Generator().manual_seed(seed)
    shape = torch.Size((1, LATENT_CHANNELS, frames, height, width))
    latents = seeded_normal(shape, 1.0, generator).to(torch.float64)
    mean = torch.tensor(vae.config.latents_mean, dtype=torch.float64).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, dtype=torch.float64).view(1, -1, 1, 1, 1)
    decoder = copy.deepcopy(vae).double()
    pixels = decoder.decode(latents * std + mean).sample  # (1, 3, T, H, W), in [-1, 1]
    first = pixels[:, :, :1]
    rest = pixels[:, :, 1:].unflatten(2, (frames - 1, TEMPORAL_FACTOR)).mean(dim=3)
    per_frame = torch.cat([first, rest], dim=2)
    blocks = per_frame.unflatten(3, (height, SPATIAL_FACTOR)).unflatten(5, (width, SPATIAL_FACTOR))
    colours = blocks.mean(dim=(4, 6))  # (1, 3, T, h, w)
    return latents[0].flatten(1).T, colours[0].flatten(1).T


def _round6(value: float) -> float:
    """Six significant digits: stable JSON, far below what a preview can show."""
    return float(f"{value:.6g}")


# --------------------------------------------------------------------------- writing


def _model_card(factors: torch.Tensor, bias: torch.Tensor) -> dict:
    """The `holocine.json` the engine reads to know what it loaded and how to preview it."""
    return {
        "format": 1,
        "name": "tiny-holocine (random weights)",
        "random_weights": True,
        "notice": NOTICE,
        "defaults": dict(DEFAULTS),
        "preview": {
            "rgb_factors": [[_round6(v) for v in row] for row in factors.tolist()],
            "rgb_bias": [_round6(v) for v in bias.tolist()],
        },
        "build": {"command": BUILD_COMMAND},
    }


def _write_holocine_dits(out_dir: Path) -> None:
    """Four DiTs of their own seeds in the original Wan key naming, like the real release."""
    for name, relative in HOLOCINE_DITS.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        state = to_original_wan_keys(build_transformer(SEEDS[name]).state_dict())
        save_file(state, str(path))


def _write_checkpoint(out_dir: Path) -> None:
    """Write every file of the checkpoint into the empty `out_dir`."""
    tokenizer = build_tokenizer()
    vae = build_vae()
    pipeline = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=build_text_encoder(len(tokenizer)),
        vae=vae,
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
        transformer=build_transformer(SEEDS["transformer"]),
        transformer_2=build_transformer(SEEDS["transformer_2"]),
        boundary_ratio=BOUNDARY_RATIO,
    )
    pipeline.save_pretrained(str(out_dir), safe_serialization=True)
    _write_holocine_dits(out_dir)
    factors, bias = fit_rgb_projection(*preview_samples(vae, SEEDS["preview_fit"]))
    card = _model_card(factors, bias)
    text = json.dumps(card, indent=2, sort_keys=True) + "\n"
    (out_dir / "holocine.json").write_text(text, encoding="utf-8")


def build_tiny_checkpoint(out_dir: Path) -> None:
    """Build the checkpoint into `out_dir`, replacing a previous build there.

    Builds into a temporary sibling first, so a failed build never leaves a half-written
    asset behind.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "holocine.json").is_file():
        raise FileExistsError(
            f"{out_dir} is not empty and holds no holocine.json, so it is not a previous tiny "
            "checkpoint; choose an empty or new --out directory."
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as staging:
        _write_checkpoint(Path(staging))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(staging, out_dir)


def held_out_preview_r2(checkpoint_dir: Path) -> float:
    """R^2 of the stored preview projection on latents the fit never saw, decoded by the
    checkpoint's own VAE: the number that says the live preview tracks the decoded colours."""
    card = json.loads((Path(checkpoint_dir) / "holocine.json").read_text(encoding="utf-8"))
    vae = AutoencoderKLWan.from_pretrained(str(Path(checkpoint_dir) / "vae"))
    factors = torch.tensor(card["preview"]["rgb_factors"], dtype=torch.float64)
    bias = torch.tensor(card["preview"]["rgb_bias"], dtype=torch.float64)
    return projection_r2(factors, bias, *preview_samples(vae, SEEDS["preview_holdout"]))


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: build, then print where it went, its size and the preview fit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    build_tiny_checkpoint(args.out)
    r2 = held_out_preview_r2(args.out)
    size = sum(path.stat().st_size for path in args.out.rglob("*") if path.is_file())
    print(f"wrote {args.out} ({size / 1e6:.2f} MB); preview projection R^2 on held-out latents: {r2:.4f}")


if __name__ == "__main__":
    main()
