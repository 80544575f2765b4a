"""Build the shipped toy-world HoloCine model, stage by stage.

    python scripts/train_toy_vae.py --out runs/toy-vae --steps 1000                     # 1. the tiny Wan VAE (20 min)
    python scripts/train_toy_world.py base                                               # 2. text encoder + VAE folder
    python -m engine train configs/toy_world.json                                        # 3. the DiT, from scratch (36 min)
    python -m engine train configs/toy_world_long.json                                   # 4. 6000 more steps (68 min)
    for c in 1 1.5 2 2.5 3 5; do python scripts/evaluate_toy_world.py --weights runs/toy-world-long/model --scenes 24 --cfg $c; done  # 5. pick the CFG
    python -m engine train configs/toy_world_stage3.json                                 # 6. 4500 more steps, uniform noise levels (53 min)
    python -m engine train configs/toy_world_stage4.json                                 # 7. 5000 more steps, exported as their EMA (62 min)
    python -m engine train configs/toy_world_stage5.json                                 # 8. 5000 more steps (65 min)
    python -m engine train configs/toy_world_outline.json                                # 9. 3000 more, outline-weighted loss (44 min)
    python scripts/train_toy_vae.py --out runs/toy-vae-decoder --decoder-from runs/toy-vae --steps 1500 --lr 5e-4 --seed 2  # 10. sharper decoder, same latents (25 min)
    python scripts/train_toy_world.py package --guidance 2                               # 11. into assets/
    python scripts/evaluate_toy_world.py --weights assets/toy-holocine --scenes 48 --out runs/toy-eval.json   # 12. its metrics
    python scripts/train_toy_world.py package --guidance 2 --metrics runs/toy-eval.json  # 13. again, with its metrics

The text side (tokenizer and umT5 encoder) is the tiny checkpoint's, frozen: the DiT learns
to read its features, as HoloCine reads a frozen umT5-XXL.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # only when run as `python scripts/...`: find `engine`
    sys.path.insert(0, str(REPO_ROOT))

from engine.toyworld.world import FPS, HEIGHT, NUM_FRAMES, WIDTH  # noqa: E402
from engine.weights import MODEL_CARD, TINY_WEIGHTS, TOY_WEIGHTS  # noqa: E402

RUNS = REPO_ROOT / "runs"
COMMANDS = [line.strip() for line in __doc__.split("\n\n")[1].splitlines()]
NOTICE = (
    "Toy-world HoloCine trained from scratch on a CPU: it draws one coloured shape (circle, square or "
    "triangle) on a plain background, wide or close, left, centre or right, across 2-4 shots. "
    "Write scenes in that vocabulary; set HOLOCINE_WEIGHTS to real weights for real video."
)


def copy_vae(vae_dir: Path, weights_folder: Path) -> None:
    (weights_folder / "vae").mkdir(exist_ok=True)
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        shutil.copy2(vae_dir / name, weights_folder / "vae" / name)


def build_base(vae_dir: Path, out: Path) -> None:
    """A weights folder with the frozen text side and the trained VAE; the trainer adds the DiT."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for component in ("tokenizer", "text_encoder"):
        shutil.copytree(TINY_WEIGHTS / component, out / component)
    copy_vae(vae_dir, out)
    report = json.loads((vae_dir / "training_report.json").read_text())
    card = {
        "format": 1,
        "name": "toy-world base (no DiT)",
        "defaults": {"height": HEIGHT, "width": WIDTH, "num_frames": NUM_FRAMES, "fps": FPS},
        "preview": {k: report["preview"][k] for k in ("rgb_factors", "rgb_bias")},
    }
    (out / MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def package(model_dir: Path, vae_dir: Path, metrics: Path | None, guidance: float, out: Path) -> None:
    """Copy the trained model into assets/ with `vae_dir`'s VAE (the one it trained on, or a decoder
    fine-tuned from it) and a model card that says what it is, how it was made and the CFG it
    renders best at (a small model over-shoots at HoloCine's 5: the sweep in step 5)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(model_dir, out)
    copy_vae(vae_dir, out)
    card = json.loads((out / MODEL_CARD).read_text())
    vae_report = json.loads((vae_dir / "training_report.json").read_text())
    card["defaults"]["guidance_scale"] = guidance
    card.update(
        {
            "name": "toy-world HoloCine (trained on CPU)",
            "notice": NOTICE,
            "random_weights": False,
            "build": {
                "commands": COMMANDS,
                "vae": {k: vae_report[k] for k in ("training", "round_trip")},
            },
        }
    )
    if metrics is not None:
        card["metrics"] = json.loads(metrics.read_text())
    (out / MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stages = parser.add_subparsers(dest="stage", required=True)
    base = stages.add_parser("base", help="assemble runs/toy-base from the tiny text side and the trained VAE")
    base.add_argument("--vae", type=Path, default=RUNS / "toy-vae")
    base.add_argument("--out", type=Path, default=RUNS / "toy-base")
    pack = stages.add_parser("package", help="copy the trained model into assets/ with its card")
    pack.add_argument("--model", type=Path, default=RUNS / "toy-world-outline" / "model")
    pack.add_argument("--vae", type=Path, default=RUNS / "toy-vae-decoder")
    pack.add_argument("--metrics", type=Path)
    pack.add_argument("--guidance", type=float, required=True, help="the CFG renders get by default (step 5's pick)")
    pack.add_argument("--out", type=Path, default=TOY_WEIGHTS)
    args = parser.parse_args(argv)
    if args.stage == "base":
        build_base(args.vae, args.out)
    else:
        package(args.model, args.vae, args.metrics, args.guidance, args.out)


if __name__ == "__main__":
    main()
