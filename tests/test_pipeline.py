"""The pipeline on the tiny checkpoint: fidelity to stock diffusers, streaming, determinism, cancel."""

from __future__ import annotations

import threading

import pytest
import torch

from engine import (
    Cancelled,
    Preview,
    Progress,
    RenderSettings,
    SceneFinished,
    SceneSpec,
    SceneValidationError,
    Shot,
    ShotDecoded,
    WeightsSpec,
    load_pipeline,
)
from engine.reference import stock_latents, stock_wan_pipeline


def _run(pipe, scene, settings, **kwargs):
    return list(pipe.generate(scene, settings, **kwargs))


def _finished(events) -> SceneFinished:
    finished = [e for e in events if isinstance(e, SceneFinished)]
    assert len(finished) == 1
    return finished[0]


def test_one_shot_full_attention_equals_stock_wan_pipeline(tiny_weights):
    """HoloCine with one shot and dense self-attention is exactly Wan2.2: same latents, bit for bit."""
    pipe, info = load_pipeline(WeightsSpec(str(tiny_weights), dit="none"), device="cpu", attention="full")
    assert info.attention_mode == "full"
    scene = SceneSpec("A lighthouse on a cliff at dusk.", (Shot("Slow push-in on the lighthouse, waves below."),))
    settings = RenderSettings(steps=5, seed=11, guidance_scale=5.0)
    ours = _finished(_run(pipe, scene, settings))

    stock = stock_wan_pipeline(pipe, tiny_weights)
    resolved, layout = pipe.resolve_scene(scene, settings)
    assert torch.equal(ours.latents, stock_latents(stock, resolved, layout.num_frames, settings))


def test_events_stream_in_order_and_shots_equal_one_full_decode(tiny_pipe, three_shot_scene, fast_settings):
    pipe, _ = tiny_pipe
    decoder_calls = []
    hook = pipe.vae.decoder.register_forward_hook(lambda *_: decoder_calls.append(1))
    seen_calls_at_shot = []
    events = []
    try:
        for event in pipe.generate(three_shot_scene, fast_settings):
            events.append(event)
            if isinstance(event, ShotDecoded):
                seen_calls_at_shot.append(len(decoder_calls))
    finally:
        hook.remove()
    finished = _finished(events)
    layout = finished.layout
    assert layout.latent_ranges == ((0, 3), (3, 6), (6, 9))

    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Preview", "Progress"] * fast_settings.steps + ["ShotDecoded"] * 3 + ["SceneFinished"]
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in progress] == list(range(1, fast_settings.steps + 1))
    assert progress[-1].eta_s == 0.0
    previews = [e for e in events if isinstance(e, Preview)]
    assert all(len(p.images) == 3 and p.images[0].shape == (12, 20, 3) for p in previews)

    shots = [e for e in events if isinstance(e, ShotDecoded)]
    assert [s.shot_index for s in shots] == [0, 1, 2]
    assert [s.frame_range for s in shots] == list(layout.frame_ranges)
    assert [s.video.shape[1] for s in shots] == [9, 12, 12]
    # the VAE decodes one latent frame per call: shot 1 arrived after 3 calls, before shots 2-3 were decoded
    assert seen_calls_at_shot == [3, 6, 9]

    with torch.no_grad():
        full = pipe.vae.decode(pipe.denormalize(finished.latents)).sample[0]
    assert torch.equal(torch.cat([s.video for s in shots], dim=1), full)
    assert torch.equal(finished.video, full)


def test_seeded_and_deterministic(tiny_pipe, three_shot_scene, fast_settings):
    pipe, _ = tiny_pipe
    first = pipe(three_shot_scene, fast_settings).latents
    again = pipe(three_shot_scene, fast_settings).latents
    other = pipe(three_shot_scene, RenderSettings(steps=fast_settings.steps, seed=fast_settings.seed + 1)).latents
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_sparse_and_full_attention_differ_and_reference_backend_agrees(tiny_pipe, three_shot_scene, fast_settings):
    pipe, _ = tiny_pipe
    sparse = pipe(three_shot_scene, fast_settings).latents
    full = pipe(three_shot_scene, RenderSettings(steps=6, seed=7, attention="full")).latents
    assert not torch.allclose(sparse, full)
    pipe.set_attention(sparse_backend="reference")
    try:
        reference = pipe(three_shot_scene, fast_settings).latents
    finally:
        pipe.set_attention(sparse_backend="auto")
    assert torch.allclose(sparse, reference, atol=1e-4)


def test_a_shot_caption_changes_only_through_its_window(tiny_pipe, three_shot_scene):
    """Editing shot 3's caption changes the render (the model reads the caption)."""
    pipe, _ = tiny_pipe
    settings = RenderSettings(steps=2, seed=3)
    base = pipe(three_shot_scene, settings).latents
    shots = list(three_shot_scene.shots)
    shots[2] = Shot("Extreme wide shot from a drone, the pier is tiny.")
    edited = pipe(SceneSpec(three_shot_scene.global_caption, tuple(shots)), settings).latents
    assert not torch.equal(base, edited)


def test_cancel_stops_between_steps(tiny_pipe, three_shot_scene, fast_settings):
    pipe, _ = tiny_pipe
    cancel = threading.Event()
    events = []
    for event in pipe.generate(three_shot_scene, fast_settings, cancel=cancel):
        events.append(event)
        if isinstance(event, Progress) and event.step == 2:
            cancel.set()
    assert isinstance(events[-1], Cancelled)
    assert events[-1].step == 2
    assert not any(isinstance(e, (ShotDecoded, SceneFinished)) for e in events)


def test_too_long_prompt_is_refused_with_counts(tiny_pipe):
    pipe, _ = tiny_pipe
    scene = SceneSpec("word " * 600, (Shot("a"), Shot("b")))
    with pytest.raises(SceneValidationError) as caught:
        pipe.resolve_scene(scene)
    assert caught.value.field == "prompt"
    assert "at most 512" in caught.value.message


def test_defaults_come_from_the_model_card(tiny_pipe, three_shot_scene):
    pipe, info = tiny_pipe
    scene, layout = pipe.resolve_scene(three_shot_scene)
    assert (scene.height, scene.width, scene.fps, layout.num_frames) == (96, 160, 8, 33)
    assert info.random_weights and "not meaningful imagery" in info.notice
    assert info.variant == "sparse" and info.attention_mode == "sparse" and info.sparse_backend == "sdpa"
    with pytest.raises(SceneValidationError) as caught:
        pipe.resolve_scene(SceneSpec("g", (Shot("a"),), width=168))
    assert caught.value.field == "width"
