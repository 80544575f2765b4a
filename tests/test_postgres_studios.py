"""Two studio processes on one PostgreSQL database: a team editing the same storyboard.

Real pieces: the throwaway PostgreSQL server of this test run, and two `python` processes
that each build the studio's services (the tiny model included) on one shared data directory
and save through the same `StudioAPI.save_shot` the page calls.
"""

from __future__ import annotations

import os
import subprocess
import sys

from engine.weights import REPO_ROOT, TINY_WEIGHTS, WEIGHTS_ENV
from studio.services import StudioSettings, build_services

# A studio that reads the shot once, then saves each line of stdin as its action on that version.
STUDIO = """
import sys
from pathlib import Path
from storage import StaleEditError
from studio.services import StudioSettings, build_services
from studio.ui.api import StudioAPI

services = build_services(StudioSettings(data_dir=Path(sys.argv[1]), db_url=sys.argv[2], device="cpu"))
shot_id = int(sys.argv[3])
version = services.storage.shots.get(shot_id).version
print("READ", version, flush=True)
for line in sys.stdin:
    try:
        version = StudioAPI(services).save_shot(shot_id, version, {"action": line.strip()})
        print("SAVED", version, flush=True)
    except StaleEditError as error:
        print("STALE", error, flush=True)
services.close()
"""


def start_studio(data, url: str, shot_id: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", STUDIO, str(data), url, str(shot_id)],
        cwd=REPO_ROOT,
        env={**os.environ, WEIGHTS_ENV: str(TINY_WEIGHTS), "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def say(studio: subprocess.Popen, action: str) -> str:
    studio.stdin.write(action + "\n")
    studio.stdin.flush()
    return studio.stdout.readline().strip()


def test_two_studios_editing_one_shot_get_the_stale_edit_message_and_lose_no_edit(tmp_path, postgres):
    url = postgres.create_database("studios")
    data = tmp_path / "shared-data"
    setup = build_services(StudioSettings(data_dir=data, db_url=url, device="cpu"))
    scene = setup.storage.scenes.add(setup.storage.projects.create("Team").id, title="Pier")
    shot = setup.storage.shots.add(scene.id, action="Boats rock.", duration_s=1.0)
    setup.close()

    first, second = start_studio(data, url, shot.id), start_studio(data, url, shot.id)
    try:
        assert first.stdout.readline().split() == ["READ", str(shot.version)]
        assert second.stdout.readline().split() == ["READ", str(shot.version)]  # both opened the same version
        assert say(first, "A gull lands on the rope.") == f"SAVED {shot.version + 1}"
        refused = say(second, "The boats drift apart.")
        assert refused.startswith("STALE") and "was changed by someone else" in refused and "reload" in refused
    finally:
        for studio in (first, second):
            studio.stdin.close()
            assert studio.wait(timeout=120) == 0
            studio.stdout.close()

    check = build_services(StudioSettings(data_dir=data, db_url=url, device="cpu"))
    try:
        saved = check.storage.shots.get(shot.id)
        assert (saved.action, saved.version) == ("A gull lands on the rope.", shot.version + 1)  # no edit lost
    finally:
        check.close()
