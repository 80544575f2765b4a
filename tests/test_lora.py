"""LoRAs on both experts, in diffusers and original Wan key formats, chosen per render."""

from __future__ import annotations

import pytest
import torch
from lora_files import diffusers_file, lora_weights, original_file

from engine import RenderSettings, WeightsError, WeightsSpec, load_pipeline
from engine.lora import LoraSpec, load_lora, parse_lora


@pytest.fixture
def pipe(tiny_weights):
    pipe, _ = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu")
    return pipe


def test_lora_changes_both_experts_and_strength_zero_changes_nothing(pipe, tmp_path, three_shot_scene):
    settings = RenderSettings(steps=4, seed=3, guidance_scale=1.0)  # draft mode: few steps, no CFG
    plain = pipe(three_shot_scene, settings).latents
    high = diffusers_file(tmp_path / "high.safetensors", lora_weights(1))
    low = diffusers_file(tmp_path / "low.safetensors", lora_weights(2))
    load_lora(pipe, LoraSpec("draft", high, low))
    assert pipe(three_shot_scene, settings).latents.equal(plain)  # loaded but not chosen: inactive

    with_lora = pipe(three_shot_scene, RenderSettings(steps=4, seed=3, guidance_scale=1.0, loras=(("draft", 1.0),)))
    assert not torch.allclose(with_lora.latents, plain, atol=1e-3)
    zero = pipe(three_shot_scene, RenderSettings(steps=4, seed=3, guidance_scale=1.0, loras=(("draft", 0.0),)))
    assert torch.allclose(zero.latents, plain, atol=1e-6)
    # both experts carry their own file: the high-noise expert's weights differ from the low-noise one's
    names = {n for n, _ in pipe.transformer.named_parameters() if "lora_B.draft" in n}
    assert names and {n for n, _ in pipe.transformer_2.named_parameters() if "lora_B.draft" in n} == names


def test_original_and_diffusers_key_formats_give_the_same_result(tiny_weights, tmp_path, three_shot_scene):
    weights = lora_weights(5)
    settings = RenderSettings(steps=3, seed=1, loras=(("style", 0.8),))
    results = []
    for writer in (diffusers_file, original_file):
        pipe, _ = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu")
        load_lora(pipe, LoraSpec("style", writer(tmp_path / f"{writer.__name__}.safetensors", weights)))
        results.append(pipe(three_shot_scene, settings).latents)
    assert torch.allclose(results[0], results[1], atol=1e-5)


def test_missing_mismatched_and_unknown_loras_are_clear_errors(pipe, tmp_path, three_shot_scene):
    with pytest.raises(WeightsError, match="no LoRA file"):
        load_lora(pipe, LoraSpec("missing", str(tmp_path / "nope.safetensors")))
    wrong = diffusers_file(tmp_path / "wrong.safetensors", lora_weights(1, width=48))
    with pytest.raises(WeightsError, match="does not fit this model"):
        load_lora(pipe, LoraSpec("wrong", wrong))
    ghost = RenderSettings(steps=1, loras=(("ghost", 1.0),))
    with pytest.raises(WeightsError, match="'ghost' is not loaded"):
        pipe.resolve_scene(three_shot_scene, ghost)  # the cheap check callers run before creating output
    with pytest.raises(WeightsError, match="'ghost' is not loaded"):
        pipe(three_shot_scene, ghost)


def test_parse_lora_reads_a_name_and_a_pair_and_says_how_to_write_it():
    assert parse_lora("fast=/m/high.safetensors,/m/low.safetensors") == LoraSpec(
        "fast", "/m/high.safetensors", "/m/low.safetensors"
    )
    assert parse_lora(" style = s.safetensors") == LoraSpec("style", "s.safetensors")
    for bad in ("style", "=a.safetensors", "x=", "x=a,b,c", "x=a,"):
        with pytest.raises(WeightsError, match="lora: .* should read NAME=HIGH.safetensors"):
            parse_lora(bad)


def test_cli_draft_render_with_a_lora(tmp_path, capsys):
    import json

    from engine.cli import main

    scene = tmp_path / "scene.json"
    scene.write_text(
        json.dumps({"global_caption": "A pier at night.", "shots": [{"caption": "Wide."}, {"caption": "Close."}]})
    )
    lora = original_file(tmp_path / "lightning.safetensors", lora_weights(7))
    assert (
        main(["render", str(scene), "--out", str(tmp_path / "draft"), "--draft", "--lora", lora, "--device", "cpu"])
        == 0
    )
    settings = json.loads((tmp_path / "draft" / "manifest.json").read_text())["settings"]
    assert (settings["steps"], settings["guidance_scale"], settings["loras"]) == (4, 1.0, [["cli", 1.0]])

    assert main(["render", str(scene), "--out", str(tmp_path / "nope"), "--draft"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: draft: ")
    assert not (tmp_path / "nope").exists()
