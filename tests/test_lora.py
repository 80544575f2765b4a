"""LoRAs on both experts, in diffusers and original Wan key formats, chosen per render."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from engine import RenderSettings, WeightsError, WeightsSpec, load_pipeline
from engine.lora import LoraSpec, load_lora

TARGETS = {"attn1.to_q": "self_attn.q", "attn2.to_v": "cross_attn.v", "ffn.net.0.proj": "ffn.0"}
SIZES = {"attn1.to_q": (24, 24), "attn2.to_v": (24, 24), "ffn.net.0.proj": (32, 24)}  # (out, in) of the tiny model


def _lora_weights(seed: int, rank: int = 4, width: int | None = None) -> dict[tuple[int, str], tuple]:
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for block in (0, 1):
        for module, (out_features, in_features) in SIZES.items():
            down = torch.randn(rank, width or in_features, generator=g) * 0.5
            up = torch.randn(out_features, rank, generator=g) * 0.5
            weights[(block, module)] = (down, up)
    return weights


def _diffusers_file(path, weights) -> str:
    save_file(
        {
            f"transformer.blocks.{b}.{m}.lora_{part}.weight": tensor
            for (b, m), (down, up) in weights.items()
            for part, tensor in (("A", down), ("B", up))
        },
        str(path),
    )
    return str(path)


def _original_file(path, weights) -> str:
    save_file(
        {
            f"diffusion_model.blocks.{b}.{TARGETS[m]}.lora_{part}.weight": tensor
            for (b, m), (down, up) in weights.items()
            for part, tensor in (("A", down), ("B", up))
        },
        str(path),
    )
    return str(path)


@pytest.fixture
def pipe(tiny_weights):
    pipe, _ = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu")
    return pipe


def test_lora_changes_both_experts_and_strength_zero_changes_nothing(pipe, tmp_path, three_shot_scene):
    settings = RenderSettings(steps=4, seed=3, guidance_scale=1.0)  # draft mode: few steps, no CFG
    plain = pipe(three_shot_scene, settings).latents
    high = _diffusers_file(tmp_path / "high.safetensors", _lora_weights(1))
    low = _diffusers_file(tmp_path / "low.safetensors", _lora_weights(2))
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
    weights = _lora_weights(5)
    settings = RenderSettings(steps=3, seed=1, loras=(("style", 0.8),))
    results = []
    for writer in (_diffusers_file, _original_file):
        pipe, _ = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu")
        load_lora(pipe, LoraSpec("style", writer(tmp_path / f"{writer.__name__}.safetensors", weights)))
        results.append(pipe(three_shot_scene, settings).latents)
    assert torch.allclose(results[0], results[1], atol=1e-5)


def test_missing_mismatched_and_unknown_loras_are_clear_errors(pipe, tmp_path, three_shot_scene):
    with pytest.raises(WeightsError, match="no LoRA file"):
        load_lora(pipe, LoraSpec("missing", str(tmp_path / "nope.safetensors")))
    wrong = _diffusers_file(tmp_path / "wrong.safetensors", _lora_weights(1, width=48))
    with pytest.raises(WeightsError, match="does not fit this model"):
        load_lora(pipe, LoraSpec("wrong", wrong))
    with pytest.raises(WeightsError, match="'ghost' is not loaded"):
        pipe(three_shot_scene, RenderSettings(steps=1, loras=(("ghost", 1.0),)))


def test_cli_draft_render_with_a_lora(tmp_path, capsys):
    import json

    from engine.cli import main

    scene = tmp_path / "scene.json"
    scene.write_text(
        json.dumps({"global_caption": "A pier at night.", "shots": [{"caption": "Wide."}, {"caption": "Close."}]})
    )
    lora = _original_file(tmp_path / "lightning.safetensors", _lora_weights(7))
    assert (
        main(["render", str(scene), "--out", str(tmp_path / "draft"), "--draft", "--lora", lora, "--device", "cpu"])
        == 0
    )
    settings = json.loads((tmp_path / "draft" / "manifest.json").read_text())["settings"]
    assert (settings["steps"], settings["guidance_scale"], settings["loras"]) == (4, 1.0, [["cli", 1.0]])

    assert main(["render", str(scene), "--out", str(tmp_path / "nope"), "--draft"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: draft: ")
    assert not (tmp_path / "nope").exists()
