"""Train the toy world's tiny Wan VAE (same `AutoencoderKLWan` class and latent layout as Wan2.1).

    python scripts/train_toy_vae.py --out runs/toy-vae --steps 1000
    python scripts/train_toy_vae.py --out runs/toy-vae-decoder --decoder-from runs/toy-vae --steps 1500

The VAE learns on 9-frame clips (the first frame alone, then two 4-frame chunks), cut at
chunk boundaries half the time, so its causal temporal cache learns to cross a cut. At the
end it measures the latents' per-channel mean and std (stored in the config, as Wan does,
so the DiT sees unit-scale latents), fits the live-preview projection, and reports how the
toy metrics read full scenes after a round trip through it: the ceiling for any DiT.

`--decoder-from` fine-tunes only the decoder of a trained VAE, as Stability's sd-vae-ft-mse
did: the encoder, and so every latent, stays bit for bit the same, so a DiT already trained
on those latents decodes through the sharper decoder without retraining.
`--edge-weight` adds an outline loss (`edge_error`). It sharpened the round trip of
wide shapes but not the DiT's renders of them, so the recipe does not use it (README).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "scripts"):  # find `engine` and the tiny checkpoint's builder
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from build_tiny_checkpoint import reinitialise, vae_init  # noqa: E402

from engine.preview import fit_rgb_projection, projection_r2  # noqa: E402
from engine.toyworld import sample_scene, score_scene  # noqa: E402
from engine.toyworld.world import BACKGROUNDS, render_still  # noqa: E402
from engine.training.data import pixels_to_unit  # noqa: E402
from engine.video import frames_to_uint8  # noqa: E402

LATENT_CHANNELS = 8
VAE_CONFIG = {
    "base_dim": 8,
    "z_dim": LATENT_CHANNELS,
    "dim_mult": [1, 2, 2, 2],
    "num_res_blocks": 1,
    "temperal_downsample": [False, True, True],
}
CHARACTER_WEIGHT = 10.0
LATENT_WEIGHT = 1e-4  # keeps the latents' scale bounded; they are normalised for the DiT afterwards


def training_clip(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 9, H, W): frame 0, then two 4-frame chunks, each chunk cutting to a new shot half the
    time (so the causal cache learns both to carry a shot on and to let go at a cut); and the
    (9, H, W) mask of its character pixels. Three latent frames: the third is the first whose
    cache holds a whole chunk, as every later latent frame of a scene does."""
    scene = sample_scene(rng)
    stills = [render_still(scene.background, scene.character, shot) for shot in scene.shots]
    shot = 0
    frames = [stills[0]]
    for _ in range(2):
        if rng.random() < 0.5 and shot + 1 < len(stills):
            shot += 1
        frames += [stills[shot]] * 4
    frames = np.stack(frames)
    character = (frames != np.array(BACKGROUNDS[scene.background], dtype=np.uint8)).any(axis=-1)
    return pixels_to_unit(frames)[0], torch.from_numpy(character)


def scene_video(scene) -> torch.Tensor:
    return pixels_to_unit(scene.render())[0]


@torch.no_grad()
def measure(vae: AutoencoderKLWan, seed: int, num_scenes: int) -> dict:
    """Latent statistics, the preview fit, and the toy metrics on VAE round trips of whole scenes."""
    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng) for _ in range(num_scenes)]
    latents, colours, psnr, adherence, sca, stripes = [], [], [], [], [], []
    for scene in scenes:
        video = scene_video(scene)[None]
        z = vae.encode(video).latent_dist.mode()
        latents.append(z)
        decoded = vae.decode(z).sample.clamp(-1, 1)
        psnr.append(float(10 * torch.log10(4.0 / (decoded - video).pow(2).mean())))
        score = score_scene(scene, frames_to_uint8(decoded[0]))
        adherence.append(score.adherence)
        sca.append(score.sca)
        stripes.append(score.stripe_consistent)
        colours.append(video)
    z_all = torch.cat(latents)
    mean = z_all.mean(dim=(0, 2, 3, 4))
    std = z_all.std(dim=(0, 2, 3, 4))
    normalised = (z_all - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)
    # Mean colour of each latent voxel's pixels: frame 0 alone, then groups of 4 frames, 8x8 blocks.
    pixels = torch.cat(colours)
    first, rest = pixels[:, :, :1], pixels[:, :, 1:].unflatten(2, (-1, 4)).mean(dim=3)
    per_frame = torch.cat([first, rest], dim=2)
    block_colours = per_frame.unflatten(3, (-1, 8)).unflatten(5, (-1, 8)).mean(dim=(4, 6))
    voxels = normalised.movedim(1, -1).reshape(-1, LATENT_CHANNELS).double()
    voxel_colours = block_colours.movedim(1, -1).reshape(-1, 3).double()
    factors, bias = fit_rgb_projection(voxels, voxel_colours)
    r2 = projection_r2(factors, bias, voxels, voxel_colours)
    return {
        "latents_mean": [round(float(v), 6) for v in mean],
        "latents_std": [round(float(v), 6) for v in std],
        "preview": {
            "rgb_factors": [[round(float(v), 6) for v in row] for row in factors],
            "rgb_bias": [round(float(v), 6) for v in bias],
            "r2": round(r2, 4),
        },
        "round_trip": {
            "scenes": num_scenes,
            "psnr_db": round(float(np.mean(psnr)), 2),
            "all_aspects_read": round(float(np.mean([min(a.values()) for a in adherence])), 4),
            "adherence": {aspect: round(float(np.mean([a[aspect] for a in adherence])), 4) for aspect in adherence[0]},
            "sca": round(float(np.mean(sca)), 4),
            "stripe_consistent": round(float(np.mean(stripes)), 4),
        },
    }


def decode_unclamped(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """`vae.decode(z).sample` before its final clamp to [-1, 1].

    The clamp zeroes the gradient of every pixel the decoder overshoots, so those pixels
    never recover; training through it stalled at 16 dB. Same frame-by-frame causal loop
    and cache as diffusers' `AutoencoderKLWan._decode` (no tiling, no patching here).
    """
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    frames = []
    for index in range(z.shape[2]):
        vae._conv_idx = [0]
        frames.append(
            vae.decoder(
                x[:, :, index : index + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=index == 0
            )
        )
    vae.clear_cache()
    return torch.cat(frames, dim=2)


def edge_error(decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the images' horizontal and vertical pixel differences.

    A per-pixel loss is content with a blob where a small shape's corners and tip should be:
    those are a few pixels each. Matching differences puts the loss on the outline itself."""
    return sum((decoded.diff(dim=dim) - target.diff(dim=dim)).abs().mean() for dim in (-1, -2))


def new_vae(seed: int, base_dim: int) -> AutoencoderKLWan:
    vae = AutoencoderKLWan(
        **{**VAE_CONFIG, "base_dim": base_dim},
        latents_mean=[0.0] * LATENT_CHANNELS,
        latents_std=[1.0] * LATENT_CHANNELS,
    )
    # Start local: every kernel at its current-frame centre tap, as the tiny checkpoint's VAE.
    # From diffusers' default init the latents barely depend on the image, the decoder learns
    # the mean image first and the autoencoder stalls (4 images overfit to MSE 0.2 in 60 steps;
    # local init: 0.04).
    reinitialise(vae, seed, vae_init)
    return vae


def frozen_encoder_vae(folder: Path) -> AutoencoderKLWan:
    """A trained VAE whose encoder side (encoder, quant_conv) no longer trains."""
    vae = AutoencoderKLWan.from_pretrained(str(folder))
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    return vae


def train(
    out: Path,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    base_dim: int,
    save_every: int = 0,
    decoder_from: Path | None = None,
    edge_weight: float = 0.0,
    round_trip_scenes: int = 24,
) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vae = new_vae(seed, base_dim) if decoder_from is None else frozen_encoder_vae(decoder_from)
    trained = [parameter for parameter in vae.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    started = time.perf_counter()
    progress = tqdm(range(steps), desc="toy VAE", mininterval=10)
    for step in progress:
        clips, masks = (torch.stack(parts) for parts in zip(*(training_clip(rng) for _ in range(batch))))
        with torch.set_grad_enabled(decoder_from is None):
            posterior = vae.encode(clips).latent_dist
        # A plain autoencoder on the posterior's mean: sampling with a weak KL only blurred the
        # decoder (a sampled run of 1200 steps reached 16 dB).
        decoded = decode_unclamped(vae, posterior.mode())
        # Character pixels weigh CHARACTER_WEIGHT times a background pixel: they are ~10% of the
        # pixels, and three of the four backgrounds are grey, so an unweighted loss learns a
        # grey-scale decoder first and chroma and stripes only very slowly.
        weights = (1.0 + (CHARACTER_WEIGHT - 1.0) * masks.float()).unsqueeze(1)
        error = (decoded - clips).abs() + (decoded - clips).pow(2)
        reconstruction = (weights * error).sum() / (weights.sum() * 3)
        loss = reconstruction + edge_weight * edge_error(decoded, clips)
        if decoder_from is None:
            loss = loss + LATENT_WEIGHT * posterior.mean.pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        progress.set_postfix(loss=f"{loss.item():.4f}")
        if save_every and (step + 1) % save_every == 0:  # a snapshot to look at while it trains
            vae.save_pretrained(str(out / "snapshot"), safe_serialization=True)
    vae.eval()
    report = measure(vae, seed + 1, num_scenes=round_trip_scenes)
    if decoder_from is None:
        vae.register_to_config(latents_mean=report["latents_mean"], latents_std=report["latents_std"])
    else:  # a fine-tuned decoder keeps its encoder's latents, so the statistics the DiT was trained with
        report.update(latents_mean=list(vae.config.latents_mean), latents_std=list(vae.config.latents_std))
    vae.save_pretrained(str(out), safe_serialization=True)
    report["training"] = {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "base_dim": vae.config.base_dim,
        "edge_weight": edge_weight,
        "decoder_from": None if decoder_from is None else str(decoder_from),
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def remeasure(out: Path) -> dict:
    """Round-trip the trained VAE in `out` through the current metrics (they may have changed
    since it was trained) and update its report; its latent statistics and preview stay."""
    vae = AutoencoderKLWan.from_pretrained(str(out)).eval()
    path = out / "training_report.json"
    report = json.loads(path.read_text())
    report["round_trip"] = measure(vae, report["training"]["seed"] + 1, num_scenes=report["round_trip"]["scenes"])[
        "round_trip"
    ]
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-dim", type=int, default=VAE_CONFIG["base_dim"])
    parser.add_argument(
        "--decoder-from", type=Path, help="a trained VAE folder: fine-tune its decoder only, keeping its latents"
    )
    parser.add_argument(
        "--edge-weight", type=float, default=0.0, help="weight of the outline loss (`edge_error`); 0 = pixels only"
    )
    parser.add_argument("--save-every", type=int, default=0, help="write a snapshot/ every N steps (0 = never)")
    parser.add_argument(
        "--remeasure",
        action="store_true",
        help="no training: measure the VAE already in --out again with today's toy metrics and update its report",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.remeasure:
        report = remeasure(args.out)
    else:
        report = train(
            args.out,
            args.steps,
            args.batch,
            args.lr,
            args.seed,
            args.base_dim,
            args.save_every,
            args.decoder_from,
            args.edge_weight,
        )
    print(json.dumps({k: report[k] for k in ("round_trip", "training")}, indent=2))


if __name__ == "__main__":
    main()
