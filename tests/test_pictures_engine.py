"""Pictures in, engine side: keyframes and reference images held in the model's latent memory.

On the tiny checkpoint: held frames end exactly at their encoded latents; a keyframe changes
its shot and, through its shot's summary, the other shots (and nothing else without
summaries); references reach every shot and never the output; pictures are fitted and
checked; the CLI reads them from SCENE.json and refuses bad ones, writing nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import RenderSettings, SceneFinished, SceneSpec, SceneValidationError, Shot, WeightsSpec, load_pipeline
from engine.cli import main
from engine.conditioning import encode_still, token_timesteps
from engine.editing import regenerate
from engine.pictures import Picture, Reference, max_pixels
from engine.reference import stock_latents, stock_wan_ti2v_pipeline

SIZE = {"height": 32, "width": 32}
SETTINGS = RenderSettings(steps=3, seed=5)
CAPTION = "A quiet room. [character1] is Dot: a red circle."


def _still(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _picture(seed: int) -> Picture:
    return Picture.from_array(_still(seed), f"still-{seed}.png")


def _scene(keyframes=(None, None), references=()) -> SceneSpec:
    shots = (Shot("Wide shot. [character1] is on the left.", 9), Shot("Close-up. [character1] is on the right.", 8))
    shots = tuple(replace(s, keyframe=k) for s, k in zip(shots, keyframes))
    return SceneSpec(CAPTION, shots, references=tuple(references), **SIZE)


def _render(pipe, scene: SceneSpec, settings: RenderSettings = SETTINGS) -> SceneFinished:
    return pipe(scene, settings)


def _frame_diff(a: SceneFinished, b: SceneFinished) -> torch.Tensor:
    """Max abs difference of two renders' latents per latent frame."""
    return (a.latents - b.latents).abs().amax(dim=(0, 1, 3, 4))


@pytest.fixture(scope="module")
def plain(tiny_pipe) -> SceneFinished:
    return _render(tiny_pipe[0], _scene())


@pytest.mark.parametrize("shot", [0, 1])
def test_a_keyframe_is_held_exactly_and_reaches_the_other_shot(tiny_pipe, plain, shot):
    pipe, _ = tiny_pipe
    keyframe = _picture(1)
    keyframes = (keyframe, None) if shot == 0 else (None, keyframe)
    finished = _render(pipe, _scene(keyframes))
    start, end = finished.layout.latent_ranges[shot]
    pixels, _ = keyframe.fitted(32, 32)
    expected = encode_still(pipe, pixels, opens_video=start == 0)
    assert torch.equal(finished.latents[:, :, start : start + 1], expected)
    other = 1 - shot
    other_start, other_end = finished.layout.latent_ranges[other]
    diff = _frame_diff(finished, plain)
    assert diff[start + 1 : end].max() > 0  # the rest of its own shot follows the keyframe
    assert diff[other_start:other_end].max() > 0  # ... and so does the other shot, through the summary
    assert [p["role"] for p in finished.pictures] == ["keyframe"]
    assert finished.pictures[0]["shot"] == shot and finished.pictures[0]["latent_frame"] == start
    assert finished.pictures[0]["sha256"] == keyframe.sha256


def test_a_later_shots_keyframe_is_encoded_as_four_frames_after_the_first(tiny_pipe):
    pipe, _ = tiny_pipe
    pixels = _still(2, 32, 32)
    opening, later = encode_still(pipe, pixels, opens_video=True), encode_still(pipe, pixels, opens_video=False)
    clip = torch.from_numpy(pixels).float().div(127.5).sub(1).permute(2, 0, 1)[None, :, None].repeat(1, 1, 5, 1, 1)
    z = pipe.normalize(pipe.vae.encode(clip).latent_dist.mode())
    assert torch.equal(opening, z[:, :, :1]) and torch.equal(later, z[:, :, 1:2])
    assert not torch.equal(opening, later)


def test_without_summaries_a_keyframe_changes_only_its_own_shot(tiny_pipe):
    pipe, _ = tiny_pipe
    pipe.shot_attention.summaries = False
    try:
        plain = _render(pipe, _scene())
        keyed = _render(pipe, _scene((None, _picture(1))))
        seen = [_render(pipe, _scene(references=[Reference(_picture(p), "[character1] is Dot.")])) for p in (3, 4)]
    finally:
        pipe.shot_attention.summaries = True
    diff = _frame_diff(keyed, plain)
    start, _ = keyed.layout.latent_ranges[1]
    assert diff[:start].max() == 0 and diff[start:].max() > 0
    # a reference's picture reaches the scene only through its summary (its caption adds a text window)
    assert _frame_diff(*seen).max() == 0


@pytest.mark.parametrize("attention", ["sparse", "full"])
def test_a_reference_reaches_every_shot_and_never_the_output(tiny_pipe, plain, attention):
    pipe, _ = tiny_pipe
    settings = replace(SETTINGS, attention=attention)
    baseline = plain if attention == "sparse" else _render(pipe, _scene(), settings)
    finished, other_picture = (
        _render(
            pipe,
            _scene(references=[Reference(_picture(p), "[character1] is Dot: a red circle.", "[character1]")]),
            settings,
        )
        for p in (3, 4)
    )
    assert finished.latents.shape == baseline.latents.shape
    assert finished.video.shape == baseline.video.shape
    assert finished.layout == baseline.layout
    diff = _frame_diff(finished, other_picture)  # same captions, another picture: every shot sees it
    for start, end in finished.layout.latent_ranges:
        assert diff[start:end].max() > 0
    (use,) = finished.pictures
    assert use["role"] == "reference" and use["latent_frame"] == 0 and use["tag"] == "[character1]"


def test_references_and_keyframes_together_and_their_prompt(tiny_pipe):
    pipe, _ = tiny_pipe
    references = [Reference(_picture(3), "[character1] is Dot."), Reference(_picture(4), "The room.")]
    scene = _scene((_picture(1), _picture(2)), references)
    assert scene.model_prompt.count("[shot cut]") == 3 and scene.prompt.count("[shot cut]") == 1
    finished = _render(pipe, scene)
    assert [(p["role"], p["latent_frame"]) for p in finished.pictures] == [
        ("reference", 0),
        ("reference", 1),
        ("keyframe", 2),
        ("keyframe", 5),
    ]
    for shot, (start, _) in enumerate(finished.layout.latent_ranges):
        expected = encode_still(pipe, scene.shots[shot].keyframe.fitted(32, 32)[0], opens_video=start == 0)
        assert torch.equal(finished.latents[:, :, start : start + 1], expected)


def test_a_redo_keeps_held_shots_and_holds_the_redone_shots_keyframe(tiny_pipe):
    pipe, _ = tiny_pipe
    reference = Reference(_picture(3), "[character1] is Dot.")
    original = _render(pipe, _scene(references=[reference]))
    keyframe = _picture(6)
    scene = _scene((None, keyframe), [reference])
    events = list(regenerate(pipe, scene, original.latents, 1, replace(SETTINGS, seed=9)))
    redone = next(e for e in events if isinstance(e, SceneFinished))
    (start, _), (kept_start, kept_end) = redone.layout.latent_ranges[1], redone.layout.latent_ranges[0]
    assert torch.equal(redone.latents[:, :, kept_start:kept_end], original.latents[:, :, kept_start:kept_end])
    expected = encode_still(pipe, keyframe.fitted(32, 32)[0], opens_video=False)
    assert torch.equal(redone.latents[:, :, start : start + 1], expected)


# -- fitting and checking pictures -----------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_fitting_covers_the_frame_and_crops_the_centre():
    wide = np.zeros((40, 120, 3), dtype=np.uint8)
    wide[:, 40:80] = (200, 10, 10)  # the centre third is red: a 2:3 crop of a 1:3 image keeps only it
    picture = Picture.from_array(wide, "wide.png")
    frame, fit = picture.fitted(32, 32)
    assert frame.shape == (32, 32, 3) and fit.scaled_to == (96, 32) and fit.frame_size == (32, 32)
    assert (np.abs(frame[:, 2:-2].astype(int) - (200, 10, 10)).max()) <= 8
    tall_frame, tall_fit = Picture.from_array(_still(1, 100, 20), "tall.png").fitted(32, 16)
    assert tall_frame.shape == (16, 32, 3) and tall_fit.scaled_to == (32, 160)
    assert fit.to_dict() == {
        "source_size": [120, 40],
        "source_mode": "RGB",
        "scaled_to": [96, 32],
        "centre_cropped_to": [32, 32],
    }


def test_colour_layouts_are_converted_and_recorded():
    grey16 = Image.fromarray(np.full((8, 8), 257 * 100, dtype=np.uint16))  # 16-bit grey 100/255
    picture = Picture.from_bytes(_png(grey16), "keyframe")
    assert picture.source_mode.startswith("I") and np.asarray(picture.image)[0, 0].tolist() == [100, 100, 100]
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG", quality=100)
    red = Picture.from_bytes(buffer.getvalue(), "keyframe")
    assert red.source_mode == "CMYK" and red.image.mode == "RGB"
    assert np.asarray(red.image)[4, 4, 0] > 200 and np.asarray(red.image)[4, 4, 1] < 60
    opaque = Picture.from_bytes(_png(Image.new("RGBA", (8, 8), (1, 2, 3, 255))), "keyframe")
    assert np.asarray(opaque.image)[0, 0].tolist() == [1, 2, 3]
    data = _png(Image.new("RGB", (8, 8), (9, 9, 9)))
    assert Picture.from_bytes(data, "keyframe").sha256 == hashlib.sha256(data).hexdigest()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels with almost no data: how a decompression bomb looks."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty file"),
        (b"these are not the pixels you are looking for", "is not an image (PNG, JPEG"),
        (_png_header_only(10_000, 10_000), "pixel"),  # over the limit, under PIL's own 2x refusal
        (_png_header_only(40_000, 40_000), "pixel"),  # PIL's DecompressionBombError
        (_png(Image.new("RGBA", (8, 8), (1, 2, 3, 0))), "transparent"),
        (_png(Image.new("LA", (8, 8), (1, 128))), "transparent"),
        (_png_header_only(8, 8), "not an image"),  # truncated pixel data
    ],
    ids=["empty", "text", "over-limit", "bomb", "transparent-rgba", "transparent-la", "truncated"],
)
def test_bad_pictures_are_refused_naming_the_field(data, words):
    with pytest.raises(SceneValidationError) as refused:
        Picture.from_bytes(data, "shots[1].keyframe", "k.png")
    assert refused.value.field == "shots[1].keyframe" and words in refused.value.message


def test_the_pixel_limit_is_pils(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 63)
    assert max_pixels() == 63
    with pytest.raises(SceneValidationError, match="over the 63-pixel limit"):
        Picture.from_bytes(_png(Image.new("RGB", (8, 8))), "references[0].image")


# -- the CLI -----------------------------------------------------------------------------------------


def _scene_json(tmp_path: Path, **extra) -> Path:
    Image.fromarray(_still(1)).save(tmp_path / "key.png")
    Image.fromarray(_still(3)).save(tmp_path / "dot.png")
    scene = {
        "global_caption": CAPTION,
        "height": 32,
        "width": 32,
        "shots": [
            {"caption": "Wide shot. [character1] is on the left.", "frames": 9},
            {"caption": "Close-up. [character1] is on the right.", "frames": 8, "keyframe": "key.png"},
        ],
        "references": [{"image": "dot.png", "tag": "[character1]"}],
        **extra,
    }
    path = tmp_path / "scene.json"
    path.write_text(json.dumps(scene))
    return path


def test_the_cli_reads_pictures_relative_to_the_scene_and_lists_them(tmp_path):
    out = tmp_path / "render"
    assert main(["render", str(_scene_json(tmp_path)), "--out", str(out), "--steps", "2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(p["role"], p["sha256"]) for p in manifest["pictures"]] == [
        ("reference", hashlib.sha256((tmp_path / "dot.png").read_bytes()).hexdigest()),
        ("keyframe", hashlib.sha256((tmp_path / "key.png").read_bytes()).hexdigest()),
    ]
    assert manifest["pictures"][0]["fit"]["centre_cropped_to"] == [32, 32]
    # the reference's caption defaults to the global caption's sentence that names its tag
    assert manifest["scene"]["references"][0]["caption"] == "[character1] is Dot: a red circle."
    assert len(manifest["shots"]) == 2 and sorted(p.name for p in (out / "shots").glob("*.mp4")) == [
        "shot_01.mp4",
        "shot_02.mp4",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"references": [{"image": "missing.png"}]}, "references[0].image"),
        ({"references": [{"image": "scene.json"}]}, "references[0].image"),
        ({"references": [{"image": "dot.png", "tag": "character1"}]}, "references[0].tag"),
        ({"references": [{"image": "dot.png", "look": "x"}]}, "references[0].look"),
        ({"references": "dot.png"}, "references"),
        ({"references": [{"image": "dot.png"}] * 9}, "references"),
    ],
)
def test_the_cli_refuses_bad_pictures_and_writes_nothing(tmp_path, capsys, change, field):
    path = _scene_json(tmp_path, **change)
    out = tmp_path / "render"
    assert main(["render", str(path), "--out", str(out), "--steps", "2"]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"error: {field}")
    assert not out.exists()


def test_the_cli_refuses_a_bad_keyframe(tmp_path, capsys):
    path = _scene_json(tmp_path)
    (tmp_path / "key.png").write_bytes(_png(Image.new("RGBA", (8, 8), (0, 0, 0, 10))))
    out = tmp_path / "render"
    assert main(["render", str(path), "--out", str(out), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "error: shots[1].keyframe" in err and "transparent pixels" in err
    assert not out.exists()


def test_a_model_trained_for_clean_pictures_gets_them_clean_at_every_step(tiny_pipe):
    """`picture_hold: clean` (a model card's default): the keyframe frame enters every step as its clean
    latent, while an edit's kept shots still follow the noise schedule."""
    pipe, _ = tiny_pipe
    keyframe = _picture(1)
    scene = _scene((None, keyframe))
    seen: list[torch.Tensor] = []
    timesteps: list[torch.Tensor] = []

    def record(_module, _args, kwargs):
        seen.append(kwargs["hidden_states"].clone())
        timesteps.append(kwargs["timestep"].clone())

    hook = pipe.transformer.register_forward_pre_hook(record, with_kwargs=True)
    defaults = pipe.defaults
    try:
        pipe.defaults = replace(defaults, picture_hold="clean")
        clean = _render(pipe, scene, replace(SETTINGS, guidance_scale=1.0))
        clean_inputs, seen[:] = list(seen), []
        clean_timesteps, timesteps[:] = list(timesteps), []
        pipe.defaults = defaults
        noised = _render(pipe, scene, replace(SETTINGS, guidance_scale=1.0))
        noised_inputs = list(seen)
    finally:
        pipe.defaults = defaults
        hook.remove()
    start, _ = clean.layout.latent_ranges[1]
    expected = encode_still(pipe, keyframe.fitted(32, 32)[0], opens_video=False)
    tokens_per_frame = (32 // 8 // 2) ** 2  # VAE 8x, patch 2x2
    for step_input, t, t_noised in zip(clean_inputs, clean_timesteps, timesteps):
        assert torch.equal(step_input[:, :, start : start + 1].float(), expected)
        # Wan2.2 TI2V's way: the keyframe's tokens at timestep 0, every other token at the step's.
        per_frame = t.view(-1, tokens_per_frame)
        assert t.shape == (1, step_input.shape[2] * tokens_per_frame) and t_noised.shape == (1,)
        assert torch.all(per_frame[start] == 0)
        assert torch.all(torch.cat([per_frame[:start], per_frame[start + 1 :]]) == t_noised)
    assert not torch.equal(noised_inputs[0][:, :, start : start + 1].float(), expected)
    assert torch.equal(clean.latents[:, :, start : start + 1], expected)  # both end exactly on it
    assert torch.equal(noised.latents[:, :, start : start + 1], expected)
    assert not torch.equal(clean.latents, noised.latents)


def test_token_timesteps_are_zero_on_frames_held_clean_per_item():
    t = torch.tensor([700.0, 300.0])
    per_batch = token_timesteps(t, torch.tensor([False, True, False]), tokens_per_frame=2)
    assert per_batch.tolist() == [[700, 700, 0, 0, 700, 700], [300, 300, 0, 0, 300, 300]]
    per_item = token_timesteps(t, torch.tensor([[True, False], [False, False]]), tokens_per_frame=1)
    assert per_item.tolist() == [[0, 700], [300, 300]]


def test_one_shot_with_a_clean_keyframe_equals_stock_wan_ti2v(tiny_weights):
    """A one-shot scene, dense attention, its keyframe held clean is exactly Wan2.2 TI2V's image-to-video
    (diffusers' `WanImageToVideoPipeline` with `expand_timesteps`): same latents, bit for bit."""
    pipe, _ = load_pipeline(WeightsSpec(str(tiny_weights), dit="none"), device="cpu", attention="full")
    pipe.defaults = replace(pipe.defaults, picture_hold="clean")
    still = _still(3, 32, 48)
    shot = Shot("Slow push-in on the lighthouse, waves below.", keyframe=Picture.from_array(still, "key.png"))
    scene = SceneSpec("A lighthouse on a cliff at dusk.", (shot,), height=32, width=48)
    settings = RenderSettings(steps=4, seed=11, guidance_scale=5.0)
    ours = pipe(scene, settings)

    resolved, layout = pipe.resolve_scene(scene, settings)
    stock = stock_wan_ti2v_pipeline(pipe, tiny_weights)
    reference = stock_latents(stock, resolved, layout.num_frames, settings, image=Image.fromarray(still))
    assert torch.equal(ours.latents, reference)
