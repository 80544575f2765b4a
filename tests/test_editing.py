"""Regenerate, vary and extend: the redone shot changes, every held shot stays exactly as stored."""

from __future__ import annotations

import pytest
import torch

from engine import RenderSettings, SceneFinished, SceneSpec, SceneValidationError, Shot, ShotDecoded
from engine.editing import extend, regenerate, vary


def _finish(events) -> tuple[SceneFinished, list[ShotDecoded]]:
    events = list(events)
    return next(e for e in events if isinstance(e, SceneFinished)), [e for e in events if isinstance(e, ShotDecoded)]


@pytest.fixture(scope="module")
def original(tiny_pipe):
    pipe, _ = tiny_pipe
    scene = SceneSpec(
        "[character1] is a tall woman in a red coat on a rainy pier at night.",
        (Shot("Wide shot of the pier."), Shot("Close-up of [character1]."), Shot("[character1] looks at the sea.")),
    )
    finished, _ = _finish(pipe.generate(scene, RenderSettings(steps=6, seed=1)))
    return scene, finished


def _shot_frames(finished: SceneFinished, shot: int) -> slice:
    start, end = finished.layout.latent_ranges[shot]
    return slice(start, end)


def test_regenerate_holds_every_other_shot_exactly(tiny_pipe, original):
    pipe, _ = tiny_pipe
    scene, stored = original
    redone, shots = _finish(regenerate(pipe, scene, stored.latents, 1, RenderSettings(steps=6, seed=2)))
    for shot in (0, 2):
        frames = _shot_frames(stored, shot)
        assert torch.equal(redone.latents[:, :, frames], stored.latents[:, :, frames])
    frames = _shot_frames(stored, 1)
    assert not torch.allclose(redone.latents[:, :, frames], stored.latents[:, :, frames])
    assert [s.shot_index for s in shots] == [0, 1, 2]  # the same events as a render

    again, _ = _finish(regenerate(pipe, scene, stored.latents, 1, RenderSettings(steps=6, seed=2)))
    assert torch.equal(again.latents, redone.latents)
    other_seed, _ = _finish(regenerate(pipe, scene, stored.latents, 1, RenderSettings(steps=6, seed=3)))
    assert not torch.equal(other_seed.latents[:, :, frames], redone.latents[:, :, frames])


def test_vary_strength_zero_reproduces_and_small_strength_stays_close(tiny_pipe, original):
    pipe, _ = tiny_pipe
    scene, stored = original
    unchanged, _ = _finish(vary(pipe, scene, stored.latents, 2, 0.0, RenderSettings(steps=6, seed=5)))
    assert torch.equal(unchanged.latents, stored.latents)
    frames = _shot_frames(stored, 2)
    light, _ = _finish(vary(pipe, scene, stored.latents, 2, 0.3, RenderSettings(steps=6, seed=5)))
    full, _ = _finish(vary(pipe, scene, stored.latents, 2, 1.0, RenderSettings(steps=6, seed=5)))
    light_change = (light.latents[:, :, frames] - stored.latents[:, :, frames]).abs().mean()
    full_change = (full.latents[:, :, frames] - stored.latents[:, :, frames]).abs().mean()
    assert 0 < light_change < full_change
    for shot in (0, 1):
        held = _shot_frames(stored, shot)
        assert torch.equal(light.latents[:, :, held], stored.latents[:, :, held])


def test_edited_caption_reaches_only_the_redone_shot(tiny_pipe, original):
    """First layer, first cross-attention call: only shot 1's video tokens see the edited caption."""
    pipe, _ = tiny_pipe
    scene, stored = original
    outputs = []
    hook = pipe.transformer.blocks[0].attn2.register_forward_hook(lambda _m, _i, out: outputs.append(out.clone()))
    try:
        settings = RenderSettings(steps=1, seed=4, guidance_scale=1.0)
        _finish(regenerate(pipe, scene, stored.latents, 1, settings))
        _finish(regenerate(pipe, scene, stored.latents, 1, settings, caption="Extreme close-up of her eyes."))
    finally:
        hook.remove()
    before, after = outputs[0], outputs[-1]
    tokens_per_frame = before.shape[1] // stored.layout.num_latent_frames
    for shot, (start, end) in enumerate(stored.layout.token_ranges(tokens_per_frame)):
        difference = (before[:, start:end] - after[:, start:end]).abs().max().item()
        if shot == 1:
            assert difference > 1e-3
        else:
            assert difference <= 1e-6, (shot, difference)


def test_extend_appends_a_shot_and_keeps_the_old_ones(tiny_pipe, original):
    pipe, _ = tiny_pipe
    scene, stored = original
    longer, shots = _finish(
        extend(pipe, scene, stored.latents, Shot("The pier is empty.", frames=12), RenderSettings(steps=6))
    )
    assert longer.layout.cut_frames == (*stored.layout.cut_frames, stored.layout.num_frames)
    assert longer.layout.num_frames == 45 and longer.layout.frame_ranges[-1] == (33, 45)
    old = stored.layout.num_latent_frames
    assert torch.equal(longer.latents[:, :, :old], stored.latents)
    assert [s.shot_index for s in shots] == [0, 1, 2, 3] and shots[-1].video.shape[1] == 12


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda pipe, scene, latents: vary(pipe, scene, None, 0, 0.5), "latents"),
        (lambda pipe, scene, latents: regenerate(pipe, scene, latents, 3), "shot"),
        (lambda pipe, scene, latents: vary(pipe, scene, latents, 0, 1.5), "strength"),
        (lambda pipe, scene, latents: extend(pipe, scene, latents, Shot("more")), "shot.frames"),
    ],
)
def test_bad_edits_are_refused(tiny_pipe, original, call, field):
    pipe, _ = tiny_pipe
    scene, stored = original
    with pytest.raises(SceneValidationError) as caught:
        list(call(pipe, scene, stored.latents))
    assert caught.value.field == field


def test_a_layout_that_no_longer_matches_is_refused(tiny_pipe, original):
    pipe, _ = tiny_pipe
    scene, stored = original
    changed = SceneSpec(scene.global_caption, scene.shots, num_frames=45)
    with pytest.raises(SceneValidationError, match="changed since that render") as caught:
        list(regenerate(pipe, changed, stored.latents, 0))
    assert caught.value.field == "latents"
