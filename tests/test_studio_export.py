"""Exports of a rendered scene from the studio: the Export panel's endpoint and `python -m studio`."""

from __future__ import annotations

import json
import subprocess
import sys

import opentimelineio as otio
from pypdf import PdfReader

from engine.video import read_mp4
from engine.weights import REPO_ROOT
from studio.exports.videos import read_video_metadata
from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services
from studio.ui import StudioUI


def _rendered_project(data_dir):
    services = build_services(StudioSettings(data_dir=data_dir, device="cpu"))
    project = services.storage.projects.create("Lighthouse")
    scene = services.storage.scenes.add(
        project.id, title="Dusk", description="A lighthouse on a cliff at dusk", fps=8, width=160, height=96
    )
    services.storage.characters.add(project.id, "Ana", description="the keeper, grey wool coat")
    for action, seconds in (("Waves below the cliff.", 2.0), ("Ana climbs the stairs.", 3.0), ("The lamp turns.", 2.0)):
        services.storage.shots.add(scene.id, action=action, duration_s=seconds)
    list(services.renders.run(RenderRequest(scene_id=scene.id, steps=2)))
    return services, project, scene


def test_export_panel_writes_every_format(tmp_path):
    services, project, scene = _rendered_project(tmp_path / "studio")
    ui = StudioUI(services)
    formats = ["mp4", "shots", "otio", "edl", "fcp7xml", "pdf", "contact-sheet", "bundle"]
    files = {f.rsplit("/", 1)[-1]: f for f in ui.export(project.id, scene.id, formats)}
    assert {"scene.mp4", "shot_01.mp4", "shot_03.mp4", "scene.otio", "scene.edl", "scene.xml"} <= set(files)
    assert {"storyboard.pdf", "contact_sheet.png", "project.zip"} <= set(files)

    frames, fps, _ = read_mp4(files["scene.mp4"])
    assert frames.shape[0] == 57 and fps == 8  # 2 s + 3 s + 2 s at 8 fps on the 4t+1 grid
    metadata = read_video_metadata(files["scene.mp4"])
    assert metadata["seed"] == 0 and "[global caption]" in metadata["prompt"]

    timeline = otio.adapters.read_from_file(files["scene.otio"])
    clips = list(timeline.find_clips())
    assert [c.source_range.duration.to_frames() for c in clips] == [17, 24, 16]
    assert [m.name for c in clips for m in c.markers][1] == "[character1] climbs the stairs."

    text = "".join(page.extract_text() for page in PdfReader(files["storyboard.pdf"]).pages)
    assert "A lighthouse on a cliff at dusk" in text and "Ana" in text and "The lamp turns." in text
    services.close()


def test_cli_exports_and_imports_a_project(tmp_path):
    services, project, scene = _rendered_project(tmp_path / "studio")
    services.close()

    def studio(*args):
        return subprocess.run(
            [sys.executable, "-m", "studio", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
        )

    source = ["--data-dir", str(tmp_path / "studio")]
    result = studio(*source, "export", "Lighthouse", "--format", "pdf", "--out", str(tmp_path / "out" / "board.pdf"))
    assert result.returncode == 0, result.stderr
    assert PdfReader(tmp_path / "out" / "board.pdf").pages

    bundle = tmp_path / "out" / "lighthouse.zip"
    assert studio(*source, "export", str(project.id), "--format", "bundle", "--out", str(bundle)).returncode == 0
    result = studio("--data-dir", str(tmp_path / "other"), "import", str(bundle))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported project ")

    other = build_services(StudioSettings(data_dir=tmp_path / "other", device="cpu"))
    (imported,) = other.storage.projects.list_all()
    assert imported.name == "Lighthouse"
    (imported_scene,) = other.storage.scenes.list_for_project(imported.id)
    assert [s.action for s in other.storage.scenes.get(imported_scene.id).shots][1] == "Ana climbs the stairs."
    other.close()

    bad = studio(*source, "export", "No such project", "--format", "pdf", "--out", str(tmp_path / "x.pdf"))
    assert bad.returncode == 2 and "no project 'No such project'" in bad.stderr
    broken = tmp_path / "broken.zip"
    broken.write_text(json.dumps({"not": "a zip"}))
    refused = studio("--data-dir", str(tmp_path / "third"), "import", str(broken))
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
