"""HoloCine at its real size on one GPU: peak memory and seconds per denoising step, per mode.

    python benchmarks/gpu.py                  # on a CUDA machine; 6.5 minutes on an H200
    python benchmarks/gpu.py --smoke --frames 61   # the same code path at toy size, on any device
    python benchmarks/gpu.py --draft --frames 241  # a draft render's time against a default one's

Builds the REAL 14B expert configuration (dim 5120, 40 layers, 40 heads) with random
weights: each expert is created on the meta device and materialised straight onto the GPU
(no download, no 57 GB of host RAM). The text encoder and VAE are the tiny checkpoint's:
a denoising step never runs them, and the prompt embeddings are random (1, 512, 4096).
Each measurement goes through the engine's own memory presets (`engine.memory`) and
HoloCine attention processors at 480x832, 6 shots. Prints one Markdown table (paste it
into the README with the card's name) and writes the rows as JSON next to it with --out.
`--draft` builds the real-size Wan VAE too (random weights) and compares a 4-step CFG-1 draft
render with a default 50-step CFG render: steps timed, plus the shot-by-shot decode.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan, WanTransformer3DModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.attention import ShotTokenLayout  # noqa: E402
from engine.attention.sparse import SPARSE_BACKENDS, available_sparse_backends  # noqa: E402
from engine.decode import decode_latent_ranges  # noqa: E402
from engine.lora import DRAFT_GUIDANCE, DRAFT_STEPS  # noqa: E402
from engine.memory import GIB, MemoryMode, apply_memory_plan, plan_memory  # noqa: E402
from engine.pipeline import EncodedPrompt, HoloCinePipeline, RenderSettings  # noqa: E402
from engine.scene import ShotLayout, latent_frame_count  # noqa: E402
from engine.text import MAX_TEXT_TOKENS  # noqa: E402
from engine.weights import TINY_WEIGHTS, load_text_and_vae  # noqa: E402

REAL_DIT = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
SMOKE_DIT = {
    **REAL_DIT,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "text_dim": 64,
    "ffn_dim": 64,
    "num_layers": 2,
}
REAL_VAE: dict = {}  # AutoencoderKLWan's defaults are the Wan2.1 VAE that Wan2.2-T2V-A14B ships
SMOKE_VAE = {"base_dim": 8, "z_dim": 16}
HEIGHT, WIDTH, SHOTS = 480, 832, 6
EMULATED_CARD = 24 * GIB


def randomise_(module: torch.nn.Module, seed: int) -> None:
    """Fill parameters in place with fan-in-scaled noise (norm weights 1): plausible activations, no download."""
    device = next(module.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.fill_(1.0)
            elif parameter.ndim >= 2:
                parameter.normal_(0.0, parameter[0].numel() ** -0.5, generator=generator)
            else:
                parameter.normal_(0.0, 0.02, generator=generator)


def build_expert(config: dict, device: torch.device, dtype: torch.dtype, seed: int) -> WanTransformer3DModel:
    """A randomly initialised expert whose weights are allocated once, on `device` (never on the host)."""
    with torch.device("meta"):
        model = WanTransformer3DModel(**config)
    model = model.to_empty(device=device)
    rope = type(model.rope)(config["attention_head_dim"], config["patch_size"], config["rope_max_seq_len"])
    model.rope = rope.to(device)  # RoPE tables are computed, not stored: rebuild them for real
    randomise_(model, seed)
    return model.to(dtype).eval()


def build_vae(config: dict, device: torch.device) -> AutoencoderKLWan:
    """A randomly initialised VAE of `config` on `device`, float32 and tiled as `load_text_and_vae` loads it."""
    with torch.device("meta"):
        vae = AutoencoderKLWan(**config)
    vae = vae.to_empty(device=device)
    randomise_(vae, 3)
    vae.enable_tiling()
    return vae.eval()


def build_pipeline(config: dict, device: torch.device, dtype: torch.dtype, memory: MemoryMode) -> HoloCinePipeline:
    """Both experts resident for `high`; for the offloading presets only the high-noise expert,
    built on the GPU and moved to host RAM at once (its 28 GB pass through the card one at a
    time), since a step never runs the other and offloading never places both on the GPU."""
    tokenizer, text_encoder, vae = load_text_and_vae(TINY_WEIGHTS, dtype)
    plan = plan_memory(memory, device)
    experts = []
    for seed in (1, 2) if plan.offload == "none" else (1,):
        expert = build_expert(config, device, dtype, seed)
        experts.append(expert if plan.offload == "none" else expert.to("cpu"))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    transformer_2 = experts[1] if len(experts) == 2 else None
    pipe = HoloCinePipeline(tokenizer, text_encoder, vae, experts[0], transformer_2, attention_mode="sparse")
    apply_memory_plan(pipe, plan, device)
    return pipe


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_seconds(
    pipe: HoloCinePipeline, frames: int, attention: str, backend: str, device, dtype, repeats: int, cfg: bool = True
) -> float:
    """Seconds of one denoising step with the high-noise expert: conditional + unconditional
    pass with `cfg`, the conditional pass alone without (a CFG-1 draft step)."""
    latent_frames = latent_frame_count(frames)
    h, w = HEIGHT // 8, WIDTH // 8
    tokens_per_frame = (h // 2) * (w // 2)
    layout = ShotLayout.resolve(SHOTS, frames)
    token_layout = ShotTokenLayout(layout.token_ranges(tokens_per_frame), tokens_per_frame)
    text_dim = pipe.transformer.config.text_dim
    generator = torch.Generator(device).manual_seed(0)
    embeddings = torch.randn(1, MAX_TEXT_TOKENS, text_dim, device=device, dtype=dtype, generator=generator)
    windows = torch.zeros(SHOTS, MAX_TEXT_TOKENS, dtype=torch.bool)
    windows[:, :64] = True
    for shot in range(SHOTS):
        windows[shot, 64 + 16 * shot : 80 + 16 * shot] = True
    positive, negative = EncodedPrompt(embeddings, windows, 160), EncodedPrompt(embeddings, None, 160)
    latents = torch.randn(1, 16, latent_frames, h, w, device=device, generator=generator)
    t = torch.tensor(950.0, device=device)
    pipe.shot_attention.mode = attention  # type: ignore[assignment]
    pipe.shot_attention.sparse_backend = backend
    timings = []
    with torch.no_grad():
        for index in range(repeats + 1):  # the first is warm-up
            synchronize(device)
            started = time.perf_counter()
            for prompt, name in ((positive, "cond"), (negative, "uncond"))[: 2 if cfg else 1]:
                pipe._velocity(pipe.transformer, latents, t, prompt, token_layout, name, index)
            synchronize(device)
            timings.append(time.perf_counter() - started)
    return min(timings[1:])


def attention_seconds(frames: int, backend: str | None, heads: int, head_dim: int, device, dtype) -> float:
    """One self-attention call at the real size: dense (backend None) or a sparse kernel."""
    tokens_per_frame = (HEIGHT // 16) * (WIDTH // 16)
    layout = ShotLayout.resolve(SHOTS, frames)
    token_layout = ShotTokenLayout(layout.token_ranges(tokens_per_frame), tokens_per_frame)
    shape = (1, token_layout.num_tokens, heads, head_dim)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype) for _ in range(3))
    timings = []
    with torch.no_grad():
        for _ in range(3):
            synchronize(device)
            started = time.perf_counter()
            if backend is None:
                F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            else:
                SPARSE_BACKENDS[backend](q, k, v, token_layout)
            synchronize(device)
            timings.append(time.perf_counter() - started)
    return min(timings[1:])


def measure(config: dict, device: torch.device, frames_list: list[int], repeats: int, emulate: bool) -> list[dict]:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    sparse_backends = [b for b in available_sparse_backends(device) if b != "reference"]
    rows: list[dict] = []
    heads, head_dim = config["num_attention_heads"], config["attention_head_dim"]
    for frames in frames_list:
        dense = attention_seconds(frames, None, heads, head_dim, device, dtype)
        for backend in sparse_backends:
            sparse = attention_seconds(frames, backend, heads, head_dim, device, dtype)
            rows.append(
                {
                    "what": f"self-attention only, sparse {backend} vs full",
                    "frames": frames,
                    "speedup": round(dense / sparse, 2),
                }
            )
    plans: list[tuple[MemoryMode, float | None]] = [("high", None), ("balanced", None), ("low", None)]
    if emulate:
        plans.append(("low", EMULATED_CARD))
    for memory, card_bytes in plans:
        pipe = build_pipeline(config, device, dtype, memory)
        if device.type == "cuda":  # the card's limit and the peak count from here: building is not rendering
            if card_bytes is not None:
                total = torch.cuda.get_device_properties(device).total_memory
                torch.cuda.set_per_process_memory_fraction(card_bytes / total, device)
            torch.cuda.reset_peak_memory_stats(device)
        attentions = [("full", "sdpa")] + [("sparse", b) for b in sparse_backends]
        for frames in frames_list:
            for attention, backend in attentions if memory == "high" else [("sparse", sparse_backends[0])]:
                if device.type == "cuda":  # per row; what is resident now (weights) stays counted
                    torch.cuda.reset_peak_memory_stats(device)
                try:
                    seconds = step_seconds(pipe, frames, attention, backend, device, dtype, repeats)
                    peak = torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None
                    result = {"s_per_step": round(seconds, 2), "peak_gib": None if peak is None else round(peak, 1)}
                except torch.OutOfMemoryError:
                    result = {"s_per_step": None, "peak_gib": "OOM"}
                rows.append(
                    {
                        "memory": memory + (" (24 GB card)" if card_bytes else ""),
                        "frames": frames,
                        "attention": attention if attention == "full" else f"sparse {backend}",
                        **result,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        del pipe
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    return rows


def decode_seconds(vae: AutoencoderKLWan, frames: int, device: torch.device) -> float:
    """Seconds to decode a scene shot by shot, as a render does (`decode_latent_ranges`)."""
    layout = ShotLayout.resolve(SHOTS, frames)
    generator = torch.Generator(device).manual_seed(0)
    shape = (1, vae.config.z_dim, latent_frame_count(frames), HEIGHT // 8, WIDTH // 8)
    z = torch.randn(shape, device=device, generator=generator)
    synchronize(device)
    started = time.perf_counter()
    with torch.no_grad():
        for shot, _ in enumerate(decode_latent_ranges(vae, z, layout.latent_ranges)):
            synchronize(device)
            print(f"decoded shot {shot + 1}/{SHOTS} after {time.perf_counter() - started:.1f} s", flush=True)
    return time.perf_counter() - started


def measure_draft(
    config: dict, vae_config: dict, device: torch.device, frames_list: list[int], repeats: int
) -> list[dict]:
    """A draft render against a default one, from its parts: denoising steps (high memory, sparse)
    plus the shot-by-shot decode that both share. Text encoding (one umT5 pass) is left out, and
    so is the LoRA's own cost (a rank-r adapter adds about r/dim of a projection's FLOPs)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    backend = next(b for b in available_sparse_backends(device) if b != "reference")
    tokenizer, text_encoder, tiny_vae = load_text_and_vae(TINY_WEIGHTS, dtype)
    pipe = HoloCinePipeline(tokenizer, text_encoder, tiny_vae, build_expert(config, device, dtype, 1)).to(device)
    vae = build_vae(vae_config, device)
    rows = []
    for frames in frames_list:
        cfg_step = step_seconds(pipe, frames, "sparse", backend, device, dtype, repeats)
        draft_step = step_seconds(pipe, frames, "sparse", backend, device, dtype, repeats, cfg=False)
        decode = decode_seconds(vae, frames, device)
        default = RenderSettings.steps * cfg_step + decode
        draft = DRAFT_STEPS * draft_step + decode
        rows.append(
            {
                "frames": frames,
                "cfg_step_s": round(cfg_step, 2),
                "draft_step_s": round(draft_step, 2),
                "decode_s": round(decode, 2),
                "default_render_s": round(default, 1),
                "draft_render_s": round(draft, 1),
                "draft_over_default": round(draft / default, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict], card: str, shapes: str) -> str:
    lines = [
        f"Measured on {card} by `python benchmarks/gpu.py` (random weights, {shapes}, 480x832, 6 shots).",
        "",
        "| memory mode | frames | attention | s / CFG step | peak GiB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if "memory" in row:
            lines.append(
                f"| {row['memory']} | {row['frames']} | {row['attention']} | {row['s_per_step']} | {row['peak_gib']} |"
            )
    lines += ["", "| attention kernel | frames | speed-up |", "|---|---|---|"]
    for row in rows:
        if "speedup" in row:
            lines.append(f"| {row['what']} | {row['frames']} | {row['speedup']}x |")
    return "\n".join(lines)


def draft_markdown(rows: list[dict], card: str, shapes: str) -> str:
    lines = [
        f"Measured on {card} by `python benchmarks/gpu.py --draft` (random weights, {shapes}, 480x832, 6 shots).",
        "",
        f"| frames | CFG step (s) | draft step (s) | decode (s) | default render: {RenderSettings.steps} CFG steps "
        f"+ decode (s) | draft: {DRAFT_STEPS} steps at CFG {DRAFT_GUIDANCE:g} + decode (s) | draft / default |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['frames']} | {row['cfg_step_s']} | {row['draft_step_s']} | {row['decode_s']} | "
            f"{row['default_render_s']} | {row['draft_render_s']} | {row['draft_over_default']} |"
        )
    return "\n".join(lines)


def benchmark_device(parser: argparse.ArgumentParser, smoke: bool) -> tuple[torch.device, str]:
    """The GPU to measure and its name; the CPU only for a --smoke run, which checks the script."""
    # an indexed device: set_per_process_memory_fraction refuses a bare "cuda"
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if device.type != "cuda" and not smoke:
        parser.error("no CUDA GPU here: run on a GPU machine, or pass --smoke to check the script at toy size")
    return device, torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run, toy-size experts)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="toy-size experts: check the script anywhere")
    parser.add_argument("--frames", type=int, nargs="+", default=[81, 241])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--draft", action="store_true", help="only the draft-vs-default render time, from its parts")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device, card = benchmark_device(parser, args.smoke)
    shapes = "toy-size experts" if args.smoke else "real 14B shapes"
    dit = SMOKE_DIT if args.smoke else REAL_DIT
    if args.draft:
        rows = measure_draft(dit, SMOKE_VAE if args.smoke else REAL_VAE, device, args.frames, args.repeats)
        table = draft_markdown(rows, card, shapes)
    else:
        rows = measure(dit, device, args.frames, args.repeats, emulate=True)
        table = markdown(rows, card, shapes)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"card": card, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
