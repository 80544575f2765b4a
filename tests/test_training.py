"""The trainer: same attention and objective as inference, exact resume, exports the engine loads."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import RenderSettings, WeightsSpec, load_pipeline
from engine.attention.context import AttentionCall, ShotAttention, ShotTokenLayout
from engine.attention.sparse import sparse_reference, sparse_sdpa
from engine.lora import LoraSpec, load_lora
from engine.sampler import UpstreamFlowScheduler
from engine.toyworld import example_scenes
from engine.training import TrainConfig, Trainer, TrainingConfigError
from engine.training.config import TimestepSampling
from engine.training.data import encode_clips, training_clips
from engine.training.objective import (
    flow_matching_loss,
    noisy_latents,
    outline_loss_weights,
    sample_sigmas,
    timesteps_for,
    velocity_target,
)

TINY_DIT = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 32,
}


def _config(tmp_path, tiny_weights, **overrides) -> TrainConfig:
    raw = {
        "output_dir": str(tmp_path / "run"),
        "weights": str(tiny_weights),
        "steps": 4,
        "batch_size": 2,
        "learning_rate": 1e-2,
        "warmup_steps": 1,
        "checkpoint_every": 2,
        "log_every": 1,
        "caption_dropout": 0.3,
        "data": {"generator": "engine.toyworld:toy_scenes", "num_clips": 4},
        "lora": {"rank": 4},
        "device": "cpu",
    }
    raw.update(overrides)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return TrainConfig.from_file(path)


def test_one_euler_step_on_the_training_target_lands_on_the_next_noise_level():
    """The velocity the trainer regresses on is exactly what the sampler integrates."""
    g = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(1, 4, 3, 2, 2, generator=g), torch.randn(1, 4, 3, 2, 2, generator=g)
    scheduler = UpstreamFlowScheduler(shift=5.0)
    scheduler.set_timesteps(10)
    scheduler.set_begin_index(3)
    sigma, next_sigma = scheduler.sigmas[3], scheduler.sigmas[4]
    x = noisy_latents(clean, noise, sigma.view(1))
    stepped = scheduler.step(velocity_target(clean, noise), scheduler.timesteps[3], x, return_dict=False)[0]
    torch.testing.assert_close(stepped, noisy_latents(clean, noise, next_sigma.view(1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(timesteps_for(sigma.view(1)), scheduler.timesteps[3].view(1).float())


def test_sigma_sampling_distributions_and_ranges():
    g = torch.Generator().manual_seed(0)
    shifted = sample_sigmas(20000, TimestepSampling("shifted", shift=3.0), g)
    assert abs(shifted.median().item() - 0.75) < 0.01  # the median of u=0.5 under shift 3: 1.5 / 2
    uniform = sample_sigmas(20000, TimestepSampling("uniform"), g, low=0.875, high=1.0)
    assert uniform.min() >= 0.875 and uniform.max() < 1.0
    assert abs(uniform.mean().item() - 0.9375) < 0.002
    logit = sample_sigmas(20000, TimestepSampling("logit_normal"), g)
    assert abs(logit.median().item() - 0.5) < 0.01


def test_differentiable_sparse_kernel_matches_the_reference_values_and_gradients():
    layout = ShotTokenLayout(((0, 12), (12, 20), (20, 36)), 4)
    g = torch.Generator().manual_seed(1)
    tensors = [torch.randn(2, 36, 2, 8, generator=g, requires_grad=True) for _ in range(3)]
    copies = [t.detach().clone().requires_grad_(True) for t in tensors]
    fast, reference = sparse_sdpa(*tensors, layout), sparse_reference(*copies, layout)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=0)
    upstream = torch.randn(fast.shape, generator=g)
    (fast * upstream).sum().backward()
    (reference * upstream).sum().backward()
    for a, b in zip(tensors, copies):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=0)


def test_per_item_layouts_equal_one_forward_per_item(tiny_pipe):
    """A training batch mixes scenes; each item must attend exactly as it would alone."""
    pipe, _ = tiny_pipe
    model = pipe.transformer
    g = torch.Generator().manual_seed(2)
    latents = torch.randn(2, 16, 5, 4, 6, generator=g)
    text = torch.randn(2, 512, 32, generator=g)
    tokens_per_frame = 6
    windows = torch.zeros(2, 512, dtype=torch.bool)
    windows[0, :7], windows[1, 3:12] = True, True
    calls = [
        AttentionCall(ShotTokenLayout(((0, 12), (12, 30)), tokens_per_frame), windows),
        AttentionCall(ShotTokenLayout(((0, 30),), tokens_per_frame), None),
    ]
    timestep = torch.tensor([900.0, 200.0])
    attention: ShotAttention = pipe.shot_attention
    with torch.no_grad():
        with attention.scope_per_item(calls):
            together = model(latents, timestep, text, return_dict=False)[0]
        alone = []
        for i, call in enumerate(calls):
            with attention.scope(call.layout, call.text_windows):
                alone.append(model(latents[i : i + 1], timestep[i : i + 1], text[i : i + 1], return_dict=False)[0])
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=0)


def test_config_errors_name_the_field(tmp_path, tiny_weights):
    with pytest.raises(TrainingConfigError, match="^timesteps.method: must be one of"):
        _config(tmp_path, tiny_weights, timesteps={"method": "cubic"})
    with pytest.raises(TrainingConfigError, match="^lora.rnk: is not a setting"):
        _config(tmp_path, tiny_weights, lora={"rnk": 4})
    with pytest.raises(TrainingConfigError, match="^data: give exactly one"):
        _config(tmp_path, tiny_weights, data={"folder": "x", "generator": "a:b"})
    with pytest.raises(TrainingConfigError, match="^steps: must be int"):
        _config(tmp_path, tiny_weights, steps="many")
    with pytest.raises(TrainingConfigError, match="^ema_decay: must be in"):
        _config(tmp_path, tiny_weights, ema_decay=1.0)
    with pytest.raises(TrainingConfigError, match="^new_model: a model built from scratch needs mode 'full'"):
        _config(tmp_path, tiny_weights, new_model={"config": TINY_DIT})
    with pytest.raises(TrainingConfigError, match="^outline_loss.weight: must be >= 1"):
        _config(tmp_path, tiny_weights, outline_loss={"weight": 0.5})
    with pytest.raises(TrainingConfigError, match="^data.options: must be a table"):
        _config(tmp_path, tiny_weights, data={"generator": "engine.toyworld:toy_scenes", "options": [1]})
    bad_option = _config(tmp_path, tiny_weights, data={"generator": "engine.toyworld:toy_scenes", "options": {"x": 1}})
    with pytest.raises(TrainingConfigError, match="^data.options: engine.toyworld:toy_scenes does not take them"):
        training_clips(bad_option.data)


def test_generator_options_set_the_mix_of_clip_kinds(tmp_path, tiny_weights):
    from engine.toyworld.pictures import REFERENCE_SHOT, PictureScene

    def clips(options: dict) -> list:
        data = {"generator": "engine.toyworld.pictures:picture_scenes", "num_clips": 40, "options": options}
        return training_clips(_config(tmp_path, tiny_weights, data=data).data)

    def kinds(options: dict) -> list[str]:
        return ["plain" if not isinstance(c, PictureScene) else "keyed" if c.keyed else "referenced" for c in clips(options)]

    assert set(kinds({})) == {"plain", "keyed", "referenced"}  # the generator's own shares
    referenced = clips({"keyed_share": 0.0, "referenced_share": 1.0})
    assert {c.reference for c in referenced} == {REFERENCE_SHOT}  # references are character sheets, as evaluated
    assert set(kinds({"keyed_share": 1.0, "referenced_share": 0.0})) == {"keyed"}
    assert set(kinds({"keyed_share": 0.0, "referenced_share": 0.0})) == {"plain"}


def _outline_reference(mask: np.ndarray, weight: float, radius: int) -> np.ndarray:
    """Pixel by pixel: a pixel is near the outline when the subject and the rest both lie within
    `radius` of it (Chebyshev); latent frame 0 is frame 0, then groups of 4 frames; 8x8 blocks."""
    frames, height, width = mask.shape
    band = np.zeros(mask.shape)
    for y in range(height):
        for x in range(width):
            window = mask[:, max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
            band[:, y, x] = window.any(axis=(1, 2)) & ~window.all(axis=(1, 2))
    groups = [band[:1]] + [band[1 + 4 * k : 5 + 4 * k] for k in range((frames - 1) // 4)]
    coverage = np.stack([g.mean(0).reshape(height // 8, 8, width // 8, 8).mean(axis=(1, 3)) for g in groups])
    return 1 + (weight - 1) * coverage


def test_outline_loss_weights_match_a_pixel_reference():
    scene = example_scenes()[2]  # wide and close triangles: outlines that cross latent pixels
    mask = scene.subject_mask()
    assert mask.shape == (scene.num_frames, 64, 96) and (scene.render()[mask] != scene.render()[0, 0, 0]).any(-1).all()
    weights = outline_loss_weights(torch.from_numpy(mask), 5.0, 2, 8, 4)
    assert weights.shape == (9, 8, 12) and weights.max() > 3
    np.testing.assert_allclose(weights.numpy(), _outline_reference(mask, 5.0, 2), atol=1e-6, rtol=0)


def test_flow_matching_loss_weighs_each_item_relative_to_its_mean():
    generator = torch.Generator().manual_seed(0)
    prediction, target = (
        torch.randn(2, 3, 2, 4, 4, generator=generator),
        torch.randn(2, 3, 2, 4, 4, generator=generator),
    )
    uniform = torch.stack([torch.full((2, 4, 4), 1.0), torch.full((2, 4, 4), 7.0)])
    torch.testing.assert_close(flow_matching_loss(prediction, target, uniform), F.mse_loss(prediction, target))
    weights = 1 + torch.rand(2, 2, 4, 4, generator=generator)
    squared = (prediction - target) ** 2
    expected = sum((weights[i] * squared[i]).sum() / weights[i].mean() for i in range(2)) / squared.numel()
    torch.testing.assert_close(flow_matching_loss(prediction, target, weights), expected)


def test_outline_loss_attaches_each_clips_weights_and_trains_on_them(tmp_path, tiny_weights):
    plain = Trainer(_config(tmp_path / "plain", tiny_weights, steps=1))
    plain.run()
    config = _config(tmp_path / "outline", tiny_weights, steps=1, outline_loss={"weight": 4.0, "radius_px": 1})
    trainer = Trainer(config)
    scenes = training_clips(config.data)
    clips = encode_clips(trainer.pipe, scenes, outline=config.outline_loss)
    for clip, scene in zip(clips, scenes, strict=True):
        expected = outline_loss_weights(torch.from_numpy(scene.subject_mask()), 4.0, 1, 8, 4)
        torch.testing.assert_close(clip.loss_weights, expected, atol=0, rtol=0)
    trainer.run()
    moved = [not torch.equal(value, _trainable(trainer)[key]) for key, value in _trainable(plain).items()]
    assert any(moved)  # the same data, noise and init: only the weighting differs


def _trainable(trainer: Trainer) -> dict[str, torch.Tensor]:
    return trainer._trainable_state()


def test_lora_run_resumes_exactly_and_exports_a_pair_the_engine_loads(tmp_path, tiny_weights):
    straight = Trainer(_config(tmp_path / "a", tiny_weights))
    straight.run()
    interrupted = Trainer(replace(_config(tmp_path / "b", tiny_weights), steps=2))
    interrupted.run()
    resumed = Trainer(_config(tmp_path / "b", tiny_weights))  # same output_dir, now 4 steps: resumes at 2
    exported = resumed.run()
    assert resumed.step == 4
    for key, value in _trainable(straight).items():
        torch.testing.assert_close(_trainable(resumed)[key], value, atol=0, rtol=0)
    log = [json.loads(line) for line in (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3, 4]

    pipe, _ = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu")
    load_lora(
        pipe, LoraSpec("trained", str(exported / "high_noise.safetensors"), str(exported / "low_noise.safetensors"))
    )
    scene = example_scenes()[0].spec()
    settings = RenderSettings(steps=3, seed=1, guidance_scale=1.0, preview_every=0)
    plain = pipe(scene, settings).latents
    with_lora = pipe(scene, replace(settings, loras=(("trained", 1.0),))).latents
    at_zero = pipe(scene, replace(settings, loras=(("trained", 0.0),))).latents
    assert (with_lora - plain).abs().max() > 1e-3
    torch.testing.assert_close(at_zero, plain, atol=1e-6, rtol=0)


def test_full_training_of_a_new_model_exports_a_weights_folder_that_renders(tmp_path, tiny_weights):
    """Trained as both of the paper's attention ablations, so the export must carry them to inference."""
    config = _config(
        tmp_path,
        tiny_weights,
        mode="full",
        experts=["high_noise"],
        new_model={"config": TINY_DIT, "experts": 1},
        steps=2,
        attention_summaries=False,
        window_cross_attention=False,
        validation={"every": 2, "steps": 2, "scenes": [example_scenes()[1].spec().to_dict()]},
    )
    trainer = Trainer(config)
    assert not trainer.pipe.shot_attention.summaries and not trainer.pipe.shot_attention.windows
    folder = trainer.run()
    assert (tmp_path / "run" / "validation" / "step-0000002-scene0.mp4").is_file()
    pipe, info = load_pipeline(WeightsSpec(str(folder)), device="cpu")
    assert pipe.transformer_2 is None and info.attention_mode == "sparse" and info.dit is None
    assert not pipe.shot_attention.summaries and not pipe.shot_attention.windows
    for key, value in trainer.pipe.transformer.state_dict().items():
        torch.testing.assert_close(pipe.transformer.state_dict()[key], value, atol=0, rtol=0)
    finished = pipe(example_scenes()[1].spec(), RenderSettings(steps=2, guidance_scale=1.0, preview_every=0))
    assert finished.video.shape[1] == example_scenes()[1].num_frames


def test_ema_is_resumed_exactly_and_is_what_the_export_holds(tmp_path, tiny_weights):
    """The export is the moving average of every step's weights (diffusers' EMA warm-up:
    decay min(ema_decay, k / (k + 9)) at step k, none at step 1), also across a resume."""
    ema_decay = 0.2
    overrides = {
        "mode": "full",
        "experts": ["high_noise"],
        "new_model": {"config": TINY_DIT, "experts": 1},
        "ema_decay": ema_decay,
    }
    straight = Trainer(_config(tmp_path / "a", tiny_weights, **overrides))
    per_step = []
    train_step = straight.train_step

    def recording_step(batch):
        loss = train_step(batch)
        per_step.append(_trainable(straight))
        return loss

    straight.train_step = recording_step
    straight_export = straight.run()
    average = per_step[0]
    for k, weights in enumerate(per_step[1:], start=2):
        decay = min(ema_decay, k / (k + 9))
        average = {key: decay * average[key] + (1 - decay) * weights[key] for key in average}
    for key, value in per_step[-1].items():  # the trainer keeps training the raw weights
        torch.testing.assert_close(_trainable(straight)[key], value, atol=0, rtol=0)

    Trainer(_config(tmp_path / "b", tiny_weights, **{**overrides, "steps": 2})).run()
    resumed_export = Trainer(_config(tmp_path / "b", tiny_weights, **overrides)).run()
    for folder in (straight_export, resumed_export):
        pipe, _ = load_pipeline(WeightsSpec(str(folder)), device="cpu")
        assert replace(pipe.defaults, negative_prompt="") == replace(straight.pipe.defaults, negative_prompt="")
        exported = pipe.transformer.state_dict()
        for key, value in average.items():
            torch.testing.assert_close(exported[key.removeprefix("high_noise.")], value, atol=1e-6, rtol=0)
        raw_gap = max((exported[key.removeprefix("high_noise.")] - per_step[-1][key]).abs().max() for key in average)
        assert raw_gap > 1e-4

    without_ema = {key: value for key, value in overrides.items() if key != "ema_decay"}
    Trainer(_config(tmp_path / "c", tiny_weights, **{**without_ema, "steps": 2})).run()
    with pytest.raises(TrainingConfigError, match="^ema_decay: .* was saved by a run without EMA"):
        Trainer(_config(tmp_path / "c", tiny_weights, **overrides)).run()


def test_gradient_checkpointing_gives_the_same_update(tmp_path, tiny_weights):
    updates = []
    for checkpointing in (False, True):
        config = _config(tmp_path / str(checkpointing), tiny_weights, gradient_checkpointing=checkpointing, steps=1)
        trainer = Trainer(config)
        trainer.run()
        updates.append(_trainable(trainer))
    for key, value in updates[0].items():
        torch.testing.assert_close(updates[1][key], value, atol=1e-6, rtol=0)


def test_a_pipeline_in_memory_trains_exactly_like_one_loaded_from_weights(tmp_path, tiny_weights):
    """Benchmarks hand the trainer random real-size experts this way; the config still sets the attention."""
    loaded = Trainer(_config(tmp_path / "loaded", tiny_weights, attention="sparse", steps=1))
    loaded.run()
    in_memory_pipe, _ = load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu", attention="full")
    config = _config(tmp_path / "in_memory", tiny_weights, attention="sparse", steps=1, weights="(in memory)")
    in_memory = Trainer(config, pipe=in_memory_pipe)
    assert in_memory.pipe is in_memory_pipe and in_memory_pipe.shot_attention.mode == "sparse"
    in_memory.run()
    for key, value in _trainable(loaded).items():
        torch.testing.assert_close(_trainable(in_memory)[key], value, atol=0, rtol=0)


def test_folder_clips_read_videos_and_sidecars(tmp_path):
    from engine.training.data import folder_clips
    from engine.video import write_mp4

    scene = example_scenes()[0]
    video = scene.render()
    write_mp4(tmp_path / "take.mp4", np.concatenate([video, video[-2:]]), fps=8)  # 35 frames: trimmed to 33
    (tmp_path / "take.json").write_text(
        json.dumps(
            {
                "global_caption": scene.global_caption,
                "shot_captions": [shot.caption for shot in scene.shots],
                "shot_cut_frames": list(scene.cut_frames),
            }
        )
    )
    (clip,) = folder_clips(tmp_path)
    spec = clip.spec()
    assert spec.prompt == scene.spec().prompt
    assert spec.layout(33).cut_frames == scene.cut_frames and len(clip.render()) == 33
    with pytest.raises(TrainingConfigError, match="^outline_loss: take.mp4 has no subject mask take.mask.mp4"):
        clip.subject_mask()
    mask = scene.subject_mask()
    write_mp4(tmp_path / "take.mask.mp4", np.repeat(mask[..., None], 3, axis=-1).astype(np.uint8) * 255, fps=8)
    (clip,) = folder_clips(tmp_path)  # the mask is not a clip of its own
    np.testing.assert_array_equal(clip.subject_mask(), mask)
    (tmp_path / "orphan.mp4").write_bytes((tmp_path / "take.mp4").read_bytes())
    with pytest.raises(TrainingConfigError, match="^data.folder: videos without a JSON sidecar: orphan.json"):
        folder_clips(tmp_path)


def test_picture_clips_hold_their_pictures_as_a_render_does_and_train(tmp_path, tiny_weights):
    """Keyed and referenced toy clips: held frames are the render's encodings and carry no loss."""
    from engine.conditioning import encode_still
    from engine.toyworld.pictures import keyed_scene, referenced_scene
    from engine.toyworld.world import ToyCharacter, ToyShot

    config = _config(
        tmp_path,
        tiny_weights,
        steps=2,
        data={"generator": "engine.toyworld.pictures:picture_scenes", "num_clips": 6, "seed": 3},
        outline_loss={"weight": 3.0, "radius_px": 1},
    )
    trainer = Trainer(config)
    scene = example_scenes()[0]
    keyed = keyed_scene(scene, 1, ToyCharacter("square", "green", "black"), "left")
    referenced = referenced_scene(scene, ToyShot("wide", "right", latent_frames=1))
    plain_clip, keyed_clip, referenced_clip = encode_clips(
        trainer.pipe, [scene, keyed, referenced], outline=config.outline_loss
    )
    start = scene.shots[0].latent_frames  # shot 2's first latent frame
    expected = encode_still(trainer.pipe, keyed.keyframe_still(), opens_video=False)[0, :, 0]
    assert torch.equal(keyed_clip.latents[:, start], expected)
    assert keyed_clip.loss_weights[start].max() == 0 and keyed_clip.loss_weights[start + 1].min() > 0
    assert "[character1] is in the centre" not in keyed.spec().shots[1].caption  # the keyed caption: framing only
    assert referenced_clip.num_references == 1 and referenced_clip.latents.shape[1] == plain_clip.latents.shape[1] + 1
    reference = encode_still(trainer.pipe, referenced.reference_still(), opens_video=True)[0, :, 0]
    assert torch.equal(referenced_clip.latents[:, 0], reference)
    assert torch.equal(referenced_clip.latents[:, 1:], plain_clip.latents)  # same video, same colourless scene frames
    assert referenced_clip.loss_weights[0].max() == 0
    assert referenced_clip.text_windows.shape[0] == len(scene.shots) + 1
    trainer.run()  # batches mix shapes only within a bucket: plain and keyed clips together, referenced apart
    assert trainer.step == 2


def test_clean_picture_training_feeds_held_frames_clean_and_says_so_in_the_card(tmp_path, tiny_weights):
    from engine.toyworld.pictures import keyed_scene
    from engine.toyworld.world import ToyCharacter

    config = _config(tmp_path, tiny_weights, steps=1, batch_size=1, caption_dropout=0.0, picture_hold="clean")
    trainer = Trainer(config)
    scene = example_scenes()[0]
    (clip,) = encode_clips(trainer.pipe, [keyed_scene(scene, 1, ToyCharacter("square", "green", "black"), "left")])
    inputs: list[torch.Tensor] = []
    timesteps: list[torch.Tensor] = []

    def record(_module, _args, kwargs):
        inputs.append(kwargs["hidden_states"].clone())
        timesteps.append(kwargs["timestep"].clone())

    hooks = [  # the clip's noise level picks one of the two experts
        expert.register_forward_pre_hook(record, with_kwargs=True) for expert in trainer.experts.values()
    ]
    try:
        trainer.train_step([clip])
    finally:
        for hook in hooks:
            hook.remove()
    start = scene.shots[0].latent_frames
    assert torch.equal(inputs[0][0, :, start].float(), clip.latents[:, start])  # the keyframe, clean
    assert not torch.equal(inputs[0][0, :, start + 1].float(), clip.latents[:, start + 1])  # the rest, noised
    frames, tokens_per_frame = clip.latents.shape[1], clip.latents[0, 0].numel() // 4  # patch 2x2
    per_frame = timesteps[0].view(frames, tokens_per_frame)  # as the render: the keyframe's tokens at t = 0
    assert torch.all(per_frame[start] == 0) and torch.all(per_frame[start + 1] > 0)
    assert torch.all(per_frame[:start] == per_frame[start + 1, 0])
    assert trainer._defaults()["picture_hold"] == "clean"
    unset = Trainer(_config(tmp_path / "unset", tiny_weights, steps=1))
    assert unset.picture_hold == unset.pipe.defaults.picture_hold == "noised"  # unasked, the card's stays
