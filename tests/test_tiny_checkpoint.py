"""The committed tiny checkpoint is exactly what its builder makes, and loads like a real one.

Every other test and demo runs on assets/tiny-holocine, so these tests pin down that it is
reproducible (no hand-edited or stale binaries), that its HoloCine DiT files use the original
Wan key naming that diffusers' own single-file loader expects, that its tokenizer behaves
like umT5's where the engine relies on it, and that its live-preview projection tracks the
decoded colours.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
from diffusers import WanTransformer3DModel
from repo_scripts import load_script
from safetensors.torch import load_file
from transformers import AutoTokenizer

from engine.wan_keys import to_original_wan_keys

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSET = REPO_ROOT / "assets" / "tiny-holocine"
DIT_FILES = sorted((ASSET / "HoloCine_dit").rglob("*.safetensors"))


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return load_script("build_tiny_checkpoint")


def _files(root: Path) -> dict[str, bytes]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in files}


def test_rebuild_is_byte_identical_to_committed_asset(builder: ModuleType, tmp_path: Path) -> None:
    builder.build_tiny_checkpoint(tmp_path / "tiny-holocine")
    rebuilt, committed = _files(tmp_path / "tiny-holocine"), _files(ASSET)
    assert sorted(rebuilt) == sorted(committed), "file sets differ: rerun scripts/build_tiny_checkpoint.py"
    changed = [name for name in committed if rebuilt[name] != committed[name]]
    assert not changed, f"{changed} differ from a fresh build: rerun scripts/build_tiny_checkpoint.py"


def test_holocine_dits_are_four_distinct_original_wan_checkpoints() -> None:
    names = [path.relative_to(ASSET).as_posix() for path in DIT_FILES]
    assert names == [
        "HoloCine_dit/full/full_high_noise.safetensors",
        "HoloCine_dit/full/full_low_noise.safetensors",
        "HoloCine_dit/sparse/sparse_high_noise.safetensors",
        "HoloCine_dit/sparse/sparse_low_noise.safetensors",
    ]
    heads = [load_file(path)["head.head.weight"] for path in DIT_FILES]
    base = load_file(ASSET / "transformer" / "diffusion_pytorch_model.safetensors")["proj_out.weight"]
    for index, head in enumerate(heads):
        assert not torch.equal(head, base)
        assert all(not torch.equal(head, other) for other in heads[index + 1 :])


@pytest.mark.parametrize("path", DIT_FILES, ids=lambda path: path.stem)
def test_dit_round_trips_through_diffusers_single_file_loader(path: Path) -> None:
    model = WanTransformer3DModel.from_single_file(
        str(path), config=str(ASSET / "transformer"), torch_dtype=torch.float32
    )
    stored = load_file(path)
    round_trip = to_original_wan_keys(model.state_dict())
    assert sorted(round_trip) == sorted(stored)
    assert all(torch.equal(round_trip[key], stored[key]) for key in stored)


def test_unknown_diffusers_key_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="condition_embedder.image_embedder.norm1.weight"):
        to_original_wan_keys({"condition_embedder.image_embedder.norm1.weight": torch.ones(1)})


def test_tokenizer_behaves_like_umt5_where_the_engine_relies_on_it() -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(ASSET / "tokenizer"))
    assert tokenizer.is_fast
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert tokenizer.model_max_length == 512
    text = "[global caption] A man. [per shot caption] Close-up. [shot cut] Wide shot."
    encoded = tokenizer(text, return_offsets_mapping=True)
    assert encoded["input_ids"][-1] == 1
    assert encoded["input_ids"].count(1) == 1
    assert tuple(encoded["offset_mapping"][-1]) == (0, 0)
    assert tokenizer.unk_token_id not in encoded["input_ids"]
    every_ascii_char = "".join(chr(code) for code in range(0x20, 0x7F))
    assert tokenizer.unk_token_id not in tokenizer(every_ascii_char)["input_ids"]


def test_model_card_matches_the_engine_schema() -> None:
    card = json.loads((ASSET / "holocine.json").read_text(encoding="utf-8"))
    assert card["format"] == 1 and card["random_weights"] is True
    assert card["defaults"] == {"height": 96, "width": 160, "num_frames": 33, "fps": 8}
    assert len(card["preview"]["rgb_factors"]) == 16
    assert all(len(row) == 3 for row in card["preview"]["rgb_factors"])
    assert len(card["preview"]["rgb_bias"]) == 3


def test_preview_projection_tracks_decoded_colours_on_held_out_latents(builder: ModuleType) -> None:
    # R^2 > 0 means it beats every constant colour, so also the zero projection; the margin
    # catches a VAE change that would leave live previews uncorrelated with the decode.
    assert builder.held_out_preview_r2(ASSET) > 0.5
