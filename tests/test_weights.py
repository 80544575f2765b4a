"""Loading weights: both layouts give the same model; bad weights fail clearly and fast."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import RenderSettings, WeightsError, WeightsSpec, load_pipeline
from engine.weights import DIT_FOLDER, REPO_ROOT


def _copy_base(src: Path, dst: Path, with_dits: bool) -> Path:
    shutil.copytree(src, dst, ignore=None if with_dits else shutil.ignore_patterns(DIT_FOLDER))
    return dst


def test_original_keys_and_diffusers_layout_give_identical_outputs(tiny_pipe, tiny_weights, tmp_path, three_shot_scene):
    pipe, info = tiny_pipe
    assert info.dit and info.variant == "sparse"
    converted = _copy_base(tiny_weights, tmp_path / "converted", with_dits=False)
    pipe.transformer.save_pretrained(converted / "transformer")
    pipe.transformer_2.save_pretrained(converted / "transformer_2")
    same, same_info = load_pipeline(WeightsSpec(str(converted), dit="none"), device="cpu", attention="sparse")
    assert same_info.dit is None
    settings = RenderSettings(steps=3, seed=5)
    assert torch.equal(pipe(three_shot_scene, settings).latents, same(three_shot_scene, settings).latents)
    # and the HoloCine DiTs really replaced the base experts
    base, _ = load_pipeline(WeightsSpec(str(tiny_weights), dit="none"), device="cpu", attention="sparse")
    assert not torch.equal(base(three_shot_scene, settings).latents, pipe(three_shot_scene, settings).latents)


def test_full_variant_loads_with_full_attention(tiny_weights):
    _, info = load_pipeline(WeightsSpec(str(tiny_weights), variant="full"), device="cpu")
    assert (info.variant, info.attention_mode) == ("full", "full")
    _, info = load_pipeline(WeightsSpec(str(tiny_weights), variant="full"), device="cpu", attention="sparse")
    assert info.attention_mode == "sparse"


def test_missing_folder(tmp_path):
    with pytest.raises(WeightsError, match="no such folder"):
        load_pipeline(WeightsSpec(str(tmp_path / "nowhere")), device="cpu")


def test_missing_dits_say_where_to_put_them(tiny_weights, tmp_path):
    base = _copy_base(tiny_weights, tmp_path / "wan", with_dits=False)
    with pytest.raises(WeightsError, match="HoloCine_dit/.*--dit none"):
        load_pipeline(WeightsSpec(str(base)), device="cpu")


def test_missing_dit_file(tiny_weights, tmp_path):
    base = _copy_base(tiny_weights, tmp_path / "wan", with_dits=True)
    (base / DIT_FOLDER / "sparse" / "sparse_low_noise.safetensors").unlink()
    with pytest.raises(WeightsError, match="sparse_low_noise.safetensors"):
        load_pipeline(WeightsSpec(str(base), variant="sparse"), device="cpu")


def test_corrupt_dit_file(tiny_weights, tmp_path):
    base = _copy_base(tiny_weights, tmp_path / "wan", with_dits=True)
    target = base / DIT_FOLDER / "sparse" / "sparse_high_noise.safetensors"
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="sparse_high_noise.safetensors could not be loaded"):
        load_pipeline(WeightsSpec(str(base)), device="cpu")


def test_corrupt_component(tiny_weights, tmp_path):
    base = _copy_base(tiny_weights, tmp_path / "wan", with_dits=True)
    (base / "vae" / "config.json").write_text("{not json")
    with pytest.raises(WeightsError, match="vae in"):
        load_pipeline(WeightsSpec(str(base)), device="cpu")


@pytest.mark.parametrize("guidance", ["high", -1, True])
def test_a_bad_recommended_cfg_in_the_model_card_names_the_field(tiny_weights_recommending_cfg, guidance):
    base = tiny_weights_recommending_cfg(guidance)
    with pytest.raises(WeightsError, match="not a valid model card: defaults.guidance_scale must be a number"):
        load_pipeline(WeightsSpec(str(base)), device="cpu")


def test_unreachable_hub_id_fails_fast_with_instructions(tmp_path):
    """No network: the hub download fails at once (refused connection), naming what to do."""
    env = {
        **os.environ,
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    code = "from engine import load_pipeline, WeightsSpec; load_pipeline(WeightsSpec('someone/no-such-model'), device='cpu')"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "WeightsError" in result.stderr
    assert "could not download 'someone/no-such-model'" in result.stderr
    assert "hf download someone/no-such-model --local-dir DIR" in result.stderr
