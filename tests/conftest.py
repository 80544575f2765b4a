"""Shared fixtures: the shipped tiny checkpoint, loaded once per session through the real loader, and
the databases storage runs on: SQLite and a throwaway PostgreSQL server this test run starts itself."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from postgres import PostgresServer, postgres_server

from engine.weights import MODEL_CARD, TINY_WEIGHTS, WEIGHTS_ENV

# Without configured weights the engine loads the trained toy model; the suite runs on the tiny
# random checkpoint (same code path, faster) unless a test asks for another one.
os.environ.setdefault(WEIGHTS_ENV, str(TINY_WEIGHTS))


@pytest.fixture(scope="session")
def tiny_weights():
    assert (TINY_WEIGHTS / "holocine.json").exists(), "run scripts/build_tiny_checkpoint.py"
    return TINY_WEIGHTS


@pytest.fixture
def tiny_weights_recommending_cfg(tmp_path) -> Callable[[object], Path]:
    """Copies of the tiny checkpoint whose model card recommends a given CFG (any value, bad ones too)."""

    def copy(guidance: object) -> Path:
        weights = tmp_path / f"weights-cfg-{guidance}"
        shutil.copytree(TINY_WEIGHTS, weights)
        card = json.loads((weights / MODEL_CARD).read_text())
        card["defaults"]["guidance_scale"] = guidance
        (weights / MODEL_CARD).write_text(json.dumps(card))
        return weights

    return copy


@pytest.fixture(scope="session")
def tiny_pipe(tiny_weights):
    """Sparse HoloCine DiTs from original-key safetensors, as a real install loads them."""
    from engine import WeightsSpec, load_pipeline

    return load_pipeline(WeightsSpec(str(tiny_weights)), device="cpu")


@pytest.fixture
def three_shot_scene():
    from engine import SceneSpec, Shot

    return SceneSpec(
        global_caption="[character1] is a tall woman in a red coat on a rainy pier at night.",
        shots=(
            Shot("Wide shot of the pier, [character1] walks toward the camera."),
            Shot("Close-up of [character1], rain on her face."),
            Shot("Medium shot, [character1] turns and looks at the sea."),
        ),
    )


@pytest.fixture
def fast_settings():
    from engine import RenderSettings

    return RenderSettings(steps=6, seed=7)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run (started on first use, stopped at the end)."""
    with postgres_server() as server:
        yield server


DATABASES = ("sqlite", "postgresql")


@pytest.fixture(params=DATABASES)
def db_url(request) -> str | None:
    """Each backend in turn: None (SQLite in the test's data directory) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").create_database()
