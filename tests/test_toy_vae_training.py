"""The toy VAE's decoder fine-tuning (`scripts/train_toy_vae.py --decoder-from`) keeps every latent.

That promise is what lets a sharper decoder ship under a DiT already trained on the old
decoder's latents without retraining it (recipe step 9), so it is checked on the shipped
toy VAE itself, with the optional outline loss switched on so that both losses train.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
from diffusers import AutoencoderKLWan
from repo_scripts import load_script

from engine.toyworld import example_scenes
from engine.training.data import pixels_to_unit
from engine.weights import TOY_WEIGHTS


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("train_toy_vae")


def test_outline_loss_sees_a_blurred_outline_but_not_a_flat_colour_shift(script: ModuleType) -> None:
    video = pixels_to_unit(example_scenes()[0].render()[:5])
    assert script.edge_error(video, video).item() == 0.0
    assert script.edge_error(video + 0.1, video).item() == pytest.approx(0.0, abs=1e-6)
    # Average each pixel with its right neighbour: only the pixels along the outline change.
    blurred = torch.cat([(video[..., :-1] + video[..., 1:]) / 2, video[..., -1:]], dim=-1)
    assert script.edge_error(blurred, video).item() > 1e-3


def test_decoder_fine_tuning_with_the_outline_loss_keeps_every_latent(script: ModuleType, tmp_path: Path) -> None:
    source = TOY_WEIGHTS / "vae"
    out = tmp_path / "vae"
    out.mkdir()
    script.train(
        out, steps=2, batch=1, lr=1e-3, seed=0, base_dim=8, decoder_from=source, edge_weight=1.0, round_trip_scenes=1
    )
    before = AutoencoderKLWan.from_pretrained(str(source)).eval()
    after = AutoencoderKLWan.from_pretrained(str(out)).eval()
    video = pixels_to_unit(example_scenes()[1].render())
    with torch.no_grad():
        assert torch.equal(before.encode(video).latent_dist.mode(), after.encode(video).latent_dist.mode())
    trained_from = before.decoder.state_dict()
    changed = [
        name for name, weight in after.decoder.state_dict().items() if not torch.equal(weight, trained_from[name])
    ]
    assert changed, "the decoder did not train"
    assert after.config.latents_mean == before.config.latents_mean
    assert after.config.latents_std == before.config.latents_std
    report = json.loads((out / "training_report.json").read_text())
    assert report["training"]["edge_weight"] == 1.0
    assert report["training"]["decoder_from"] == str(source)
