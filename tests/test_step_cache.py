"""The optional step cache (diffusers' First Block Cache): scoped to one render, never leaking state."""

from __future__ import annotations

import torch

from engine import RenderSettings, SceneSpec, Shot, WeightsSpec, load_pipeline

THREE = SceneSpec("A pier at night.", (Shot("Wide."), Shot("Close."), Shot("Far.")))
TWO = SceneSpec("A desert road.", (Shot("A truck passes."), Shot("Dust settles.")), num_frames=21)


def test_a_quiet_threshold_changes_nothing_and_the_cache_leaves_with_the_render(tiny_pipe):
    pipe, _ = tiny_pipe
    plain = pipe(THREE, RenderSettings(steps=6, seed=1)).latents
    # 0.2 is below every step-to-step change of the tiny model's first block: nothing is skipped
    assert torch.equal(pipe(THREE, RenderSettings(steps=6, seed=1, step_cache=0.2)).latents, plain)
    skipping = pipe(THREE, RenderSettings(steps=6, seed=1, step_cache=1.0)).latents
    assert not torch.allclose(skipping, plain, atol=1e-3)  # a loose threshold does reuse blocks
    assert not pipe.transformer.is_cache_enabled and not pipe.transformer_2.is_cache_enabled
    assert torch.equal(pipe(THREE, RenderSettings(steps=6, seed=1)).latents, plain)


def test_no_cached_state_crosses_scenes_or_layouts(tiny_weights, tiny_pipe):
    pipe, _ = tiny_pipe
    settings = RenderSettings(steps=6, seed=2, step_cache=1.0)
    pipe(THREE, settings)  # fills and drops a cache for a 3-shot layout
    after_other_scene = pipe(TWO, settings).latents
    fresh, _ = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu")
    assert torch.equal(after_other_scene, fresh(TWO, settings).latents)
    assert torch.equal(pipe(TWO, settings).latents, after_other_scene)  # and it is deterministic
