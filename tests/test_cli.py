"""`python -m engine` end to end on the tiny checkpoint, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from engine.cli import main
from engine.video import read_mp4
from engine.weights import REPO_ROOT

SCENE = {
    "global_caption": "[character1] is an old fisherman with a white beard; a grey stormy harbour.",
    "shots": [
        {"caption": "Wide shot, boats rocking in the harbour."},
        {"caption": "Close-up of [character1] tying a rope."},
        {"caption": "Medium shot, [character1] looks up at the sky."},
    ],
}


def _engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def _write(tmp_path: Path, scene) -> Path:
    path = tmp_path / "scene.json"
    path.write_text(scene if isinstance(scene, str) else json.dumps(scene))
    return path


def test_render_three_shots_with_defaults(tmp_path):
    out = tmp_path / "render"
    result = _engine("render", str(_write(tmp_path, SCENE)), "--out", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "not meaningful imagery" in result.stderr  # the tiny model says what it is

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_frames"] == 33
    assert manifest["shot_cut_frames"] == [9, 21]
    assert [s["frame_range"] for s in manifest["shots"]] == [[0, 9], [9, 21], [21, 33]]
    assert [s["latent_range"] for s in manifest["shots"]] == [[0, 3], [3, 6], [6, 9]]
    assert [s["caption"] for s in manifest["shots"]] == [s["caption"] for s in SCENE["shots"]]
    assert (
        manifest["seed"] == 0 and manifest["settings"]["steps"] == 50 and manifest["settings"]["guidance_scale"] == 5.0
    )
    assert manifest["engine"]["attention_mode"] == "sparse" and manifest["engine"]["random_weights"] is True
    assert set(manifest["timings"]) >= {"denoise_s", "decode_s", "total_s"}

    frames, fps, tags = read_mp4(out / "scene.mp4")
    assert frames.shape == (33, 96, 160, 3) and fps == 8
    assert json.loads(tags["comment"])["prompt"] == manifest["prompt"]
    for shot in manifest["shots"]:
        shot_frames, _, _ = read_mp4(out / shot["file"])
        assert shot_frames.shape[0] == shot["frame_range"][1] - shot["frame_range"][0]
    assert load_file(out / "latents.safetensors")["latents"].shape == (1, 16, 9, 12, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["render", "scene.json"]  # no staging folder left


def test_cfg_defaults_to_the_model_cards_recommendation(tmp_path, tiny_weights_recommending_cfg):
    """A small model renders best below HoloCine's CFG 5, so its card may say so; --cfg still wins."""
    weights = tiny_weights_recommending_cfg(3.5)
    scene = str(_write(tmp_path, SCENE))
    for extra, expected in (((), 3.5), (("--cfg", "2"), 2.0)):
        out = tmp_path / f"render-{expected}"
        common = ["render", scene, "--out", str(out), "--weights", str(weights), "--steps", "1", "--device", "cpu"]
        assert main([*common, *extra]) == 0
        assert json.loads((out / "manifest.json").read_text())["settings"]["guidance_scale"] == expected


@pytest.mark.parametrize(
    ("scene", "extra", "field"),
    [
        ({**SCENE, "shots": [{"caption": "a"}, {"caption": ""}]}, [], "shots[1].caption"),
        ("{ not json", [], "scene"),
        ({**SCENE, "shot_cut_frames": [9, 40]}, [], "shot_cut_frames[1]"),
        ({**SCENE, "shot_cut_frames": [21, 9]}, [], "shot_cut_frames[1]"),
        ({**SCENE, "global_caption": "rain " * 600}, [], "prompt"),
        ({"global_caption": "g", "shots": []}, [], "shots"),
        (SCENE, ["--frames", "9"], "num_frames"),
        (SCENE, ["--backend", "flash"], "flash"),
        (SCENE, ["--weights", "/no/such/folder"], "weights"),
    ],
)
def test_invalid_input_exits_2_and_writes_nothing(tmp_path, capsys, scene, extra, field):
    """In-process through the CLI's own entry point (the subprocess path is covered above)."""
    out = tmp_path / "render"
    status = main(["render", str(_write(tmp_path, scene)), "--out", str(out), "--steps", "2", *extra])
    assert status == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and field in last_line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.json"]


def test_existing_output_folder_is_left_as_it_was(tmp_path):
    out = tmp_path / "render"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _engine("render", str(_write(tmp_path, SCENE)), "--out", str(out), "--steps", "2")
    assert result.returncode == 2 and "already exists" in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_info_lists_backends_and_weights():
    result = _engine("info")
    assert result.returncode == 0, result.stderr
    assert "sparse attention backends on cpu: sdpa, reference" in result.stdout
    assert "tiny-holocine" in result.stdout and "not meaningful imagery" in result.stdout
