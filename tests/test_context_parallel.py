"""Ulysses context parallelism (engine/parallel.py): two CPU processes on gloo give the one-process latents."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from engine.errors import BackendUnavailableError, SceneValidationError
from engine.parallel import UlyssesGroup
from engine.weights import REPO_ROOT, TINY_WEIGHTS

WORLD = 2
TOLERANCE = 1e-5  # fp32; the tiny model has 2 heads, so each rank attends with 1

CAPTIONS = ("Wide shot of the pier at night.", "Close-up of [character1] in the rain.", "She turns to the sea.")
GLOBAL = "[character1] is a tall woman in a red coat on a rainy pier."
HEIGHT, WIDTH, FRAMES, CUTS = 64, 96, 25, (5, 17)  # a short small video keeps the tiny VAE's decode quick


def _scene(shots: int):
    from engine import SceneSpec, Shot

    # 25 frames of 64x96 = 7 latent frames of 4x6 = 24 tokens; cuts at frames 5 and 17 -> shots of 2, 3
    # and 2 latent frames (tokens [0, 48), [48, 120), [120, 168)), so the ranks' halves (84 tokens each)
    # meet inside the second shot, in the middle of a frame.
    cuts = CUTS if shots == 3 else None
    captions = tuple(Shot(c) for c in CAPTIONS[:shots])
    return SceneSpec(GLOBAL, captions, num_frames=FRAMES, shot_cut_frames=cuts, height=HEIGHT, width=WIDTH)


def _stored_latents() -> torch.Tensor:
    return torch.randn((1, 16, 7, HEIGHT // 8, WIDTH // 8), generator=torch.Generator().manual_seed(11))


def _settings(attention: str):
    from engine import RenderSettings

    return RenderSettings(steps=2, seed=4, attention=attention, preview_every=0)


def _latents(events) -> torch.Tensor:
    from engine.events import SceneFinished

    return next(e for e in events if isinstance(e, SceneFinished)).latents


def run_cases(pipe) -> dict[str, torch.Tensor]:
    """Every case this file checks, as the same calls on one process or on each rank."""
    from engine.editing import regenerate, vary

    results = {}
    for attention in ("full", "sparse"):
        for shots in (1, 3):
            results[f"{attention}-{shots}shot"] = _latents(pipe.generate(_scene(shots), _settings(attention)))
    stored = _stored_latents()
    results["regenerate-held"] = _latents(regenerate(pipe, _scene(3), stored, 1, _settings("sparse")))
    # A new caption for the redone shot: held shots keep the old prompt's text windows.
    results["vary-new-caption"] = _latents(
        vary(pipe, _scene(3), stored, 2, 0.5, _settings("sparse"), caption="She runs along the pier.")
    )
    results["pictures"] = _latents(pipe.generate(_scene_with_pictures(), _settings("sparse")))
    defaults = pipe.defaults
    pipe.defaults = replace(defaults, picture_hold="clean")  # per-token timesteps, cut to each rank's slice
    try:
        results["pictures-clean"] = _latents(pipe.generate(_scene_with_pictures(), _settings("sparse")))
    finally:
        pipe.defaults = defaults
    return results


def _scene_with_pictures():
    """The 3-shot scene with a reference (one more latent frame before it: 8 frames, 96 tokens a rank)
    and a keyframe on shot 2."""

    import numpy as np

    from engine.pictures import Picture, Reference

    def picture(seed: int) -> Picture:
        return Picture.from_array(np.random.default_rng(seed).integers(0, 256, (48, 80, 3), dtype=np.uint8), "p.png")

    scene = _scene(3)
    shots = (scene.shots[0], replace(scene.shots[1], keyframe=picture(1)), scene.shots[2])
    return replace(scene, shots=shots, references=(Reference(picture(2), "[character1] in her red coat."),))


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        from engine import WeightsSpec, load_pipeline
        from engine.parallel import enable_ulysses

        group = UlyssesGroup(rank=rank, world_size=WORLD)
        # The exchanges alone: out and back again is the identity, and each rank sees the whole sequence.
        x = torch.arange(2 * 6 * 4 * 3, dtype=torch.float32).reshape(2, 6, 4, 3) + 1000 * rank
        heads = group.sequence_to_heads(x)
        assert heads.shape == (2, 12, 2, 3)
        assert torch.equal(heads[:, 6 * rank : 6 * rank + 6], x[:, :, 2 * rank : 2 * rank + 2])
        assert torch.equal(group.heads_to_sequence(heads), x)

        pipe, _ = load_pipeline(WeightsSpec(str(TINY_WEIGHTS)), device="cpu")
        enable_ulysses(pipe, group)
        seen = []  # what the blocks see: this rank's half of the sequence
        probe = pipe.transformer.blocks[-1].register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
        results = run_cases(pipe)
        probe.remove()
        # 7 latent frames x 24 tokens / 2; with the reference frame (two scenes of 2 steps), 8 x 24 / 2
        assert set(seen[:-4]) == {84} and seen[-4:] == [96] * 4, seen
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def results(tiny_pipe, tmp_path_factory):
    """(one-process results, [rank 0's, rank 1's]); the ranks run while this process computes its own."""
    out = tmp_path_factory.mktemp("ulysses")
    ranks = mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False)
    pipe, _ = tiny_pipe
    single = run_cases(pipe)
    while not ranks.join():
        pass
    return single, [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD)]


CASES = ["full-1shot", "full-3shot", "sparse-1shot", "sparse-3shot", "regenerate-held", "vary-new-caption", "pictures", "pictures-clean"]


@pytest.mark.parametrize("case", CASES)
def test_two_processes_give_the_single_process_latents(results, case):
    single_results, parallel_results = results
    expected = single_results[case]
    for rank, results in enumerate(parallel_results):
        diff = (results[case] - expected).abs().max().item()
        print(f"{case} rank {rank}: max abs diff {diff:.3g}")
        assert diff <= TOLERANCE, f"{case}: rank {rank} differs by {diff}"
    assert torch.equal(parallel_results[0][case], parallel_results[1][case])  # every rank, the same latents


def test_cases_differ_from_each_other(results):
    """Guards the comparison above: attention mode, shot layout and edits all change the result."""
    values = list(results[0].values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert (values[i] - values[j]).abs().max() > 1e-3


def test_heads_and_tokens_that_do_not_split_are_refused(tiny_pipe, three_shot_scene):
    with pytest.raises(BackendUnavailableError, match=r"2 heads do not divide by 3 processes; use one of \[1, 2\]"):
        UlyssesGroup(rank=0, world_size=3).check_heads(2)
    # 9 latent frames x 60 tokens = 540 tokens: 7 does not divide it; 7 latent frames would (420 = 7 x 60).
    with pytest.raises(SceneValidationError, match=r"540 do not divide by 7; use num_frames 25 or 53") as error:
        UlyssesGroup(rank=0, world_size=7).check_tokens(9, 60)
    assert error.value.field == "num_frames"
    UlyssesGroup(rank=0, world_size=4).check_tokens(9, 60)  # 540 = 4 x 135

    from engine import RenderSettings

    pipe, _ = tiny_pipe
    pipe.shot_attention.parallel = UlyssesGroup(rank=0, world_size=7)
    try:
        with pytest.raises(SceneValidationError) as error:
            pipe.resolve_scene(three_shot_scene)
        assert error.value.field == "num_frames"
        with pytest.raises(SceneValidationError) as error:
            pipe.resolve_scene(three_shot_scene, RenderSettings(step_cache=0.1))
        assert error.value.field == "step_cache"
    finally:
        pipe.shot_attention.parallel = None


SCENE = {
    "global_caption": GLOBAL,
    "shots": [{"caption": c} for c in CAPTIONS],
    "num_frames": FRAMES,
    "shot_cut_frames": list(CUTS),
}


def _cli(*args: str, torchrun: bool = False) -> subprocess.Popen:
    launcher = [sys.executable]
    if torchrun:
        launcher += ["-m", "torch.distributed.run", f"--nproc-per-node={WORLD}", "--master-addr=127.0.0.1"]
        launcher += [f"--master-port={_free_port()}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*launcher, "-m", "engine", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_cli_under_torchrun_writes_what_one_process_writes(tmp_path):
    scene = tmp_path / "scene.json"
    scene.write_text(json.dumps(SCENE))
    common = [
        "render",
        str(scene),
        *("--device", "cpu", "--steps", "2", "--height", str(HEIGHT), "--width", str(WIDTH)),
    ]
    # Without torchrun, --parallel ulysses renders in this one process and says so; both run at once.
    runs = {
        "alone": _cli(*common, "--out", str(tmp_path / "alone" / "render"), "--parallel", "ulysses"),
        "ulysses": _cli(*common, "--out", str(tmp_path / "ulysses" / "render"), "--parallel", "ulysses", torchrun=True),
    }
    stderr = {}
    for name, process in runs.items():
        _, stderr[name] = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[name]
    assert "not launched by torchrun" in stderr["alone"]
    assert stderr["ulysses"].count("wrote ") == 1  # rank 0 only

    files = {p.relative_to(tmp_path / "alone") for p in (tmp_path / "alone").rglob("*")}
    assert files == {p.relative_to(tmp_path / "ulysses") for p in (tmp_path / "ulysses").rglob("*")}  # nothing else
    manifests = [json.loads((tmp_path / run / "render" / "manifest.json").read_text()) for run in ("alone", "ulysses")]
    for key in ("num_frames", "shot_cut_frames", "shots", "prompt", "settings"):
        assert manifests[0][key] == manifests[1][key], key
    latents = [load_file(tmp_path / run / "render" / "latents.safetensors")["latents"] for run in ("alone", "ulysses")]
    assert (latents[0] - latents[1]).abs().max() <= TOLERANCE


def test_cli_refuses_torchrun_without_parallel(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    scene = tmp_path / "scene.json"
    scene.write_text(json.dumps(SCENE))
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it
    assert main(["render", str(scene), "--out", str(tmp_path / "b"), "--device", "cpu"]) == 2
    assert "pass --parallel ulysses" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
