"""Scene exports on three tiny synthetic takes, each read back through an independent reader."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image
from pypdf import PdfReader

import studio.exports.pdf_fonts as pdf_fonts
from engine.video import read_mp4, write_mp4
from studio.exports import (
    TIMELINE_SUFFIXES,
    ExportCharacter,
    ExportError,
    ExportScene,
    ExportShot,
    build_timeline,
    contact_sheet_layout,
    export_scene_video,
    export_shot_videos,
    frames_to_timecode,
    interchange_rate,
    read_video_metadata,
    shot_media_urls,
    validate_scene,
    write_contact_sheet,
    write_storyboard_pdf,
    write_timeline,
)
from studio.exports.text_fold import ASCII, fold_text

FPS = 8
HEIGHT, WIDTH = 96, 160
FRAME_COUNTS = (9, 12, 12)
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))
CAPTIONS = (
    "Wide shot of the pier, [character1] walks toward the camera – rain.",
    "Close-up of [character1], rain on her face. 雨",
    "Medium shot, [character1] turns and looks at the sea.",
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> ExportScene:
    """Three solid-colour takes (9/12/12 frames at 8 fps) and a scene around them."""
    folder = tmp_path_factory.mktemp("takes")
    shots, start = [], 0
    for number, (count, colour, caption) in enumerate(zip(FRAME_COUNTS, COLOURS, CAPTIONS), start=1):
        video = folder / f"take_{number}.mp4"
        write_mp4(video, np.full((count, HEIGHT, WIDTH, 3), colour, dtype=np.uint8), fps=FPS)
        thumbnail = None
        if number == 3:  # one shot with a director-chosen still instead of sampled frames
            thumbnail = folder / "thumb_3.png"
            Image.new("RGB", (WIDTH, HEIGHT), colour).save(thumbnail)
        shots.append(
            ExportShot(
                number=number,
                caption=caption,
                action=f"Action {number}",
                shot_size=("wide", "close-up", "medium")[number - 1],
                camera_angle="eye level",
                camera_movement="static",
                dialogue="Where are you?" if number == 2 else "",
                duration_s=count / FPS,
                frame_range=(start, start + count),
                video_path=video,
                thumbnail_path=thumbnail,
            )
        )
        start += count
    return ExportScene(
        project_name="Harbour Nights",
        title="The pier",
        description="A woman waits on a rainy pier at night for someone who never comes.",
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        global_caption="[character1] is a tall woman in a red coat on a rainy pier at night.",
        prompt="[global caption] ... [shot cut] ...",
        seed=1234,
        settings={"steps": 6, "guidance_scale": 5.0, "attention": "sparse"},
        characters=(ExportCharacter("[character1]", "Eleni Ελένη", "Tall woman in a red coat."),),
        shots=tuple(shots),
    )


def _assert_no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.rglob("*") if ".tmp" in p.name], "temporary file left behind"


def test_scene_video_is_the_takes_remuxed_with_the_generation_record(scene: ExportScene, tmp_path: Path) -> None:
    path = export_scene_video(scene, tmp_path / "scene.mp4")
    frames, fps, _ = read_mp4(path)
    assert frames.shape == (33, HEIGHT, WIDTH, 3) and fps == FPS
    takes = np.concatenate([read_mp4(shot.video_path)[0] for shot in scene.shots])
    assert np.array_equal(frames, takes), "copied packets must decode to exactly the takes' frames"
    record = read_video_metadata(path)
    assert record["prompt"] == scene.prompt and record["global_caption"] == scene.global_caption
    assert record["seed"] == 1234 and record["settings"] == scene.settings
    assert [s["caption"] for s in record["shots"]] == list(CAPTIONS)
    assert [s["frame_range"] for s in record["shots"]] == [[0, 9], [9, 21], [21, 33]]
    _assert_no_temp_files(tmp_path)


def test_shot_videos_copy_each_take_with_its_caption(scene: ExportScene, tmp_path: Path) -> None:
    paths = export_shot_videos(scene, tmp_path / "shots")
    assert [p.name for p in paths] == ["shot_01.mp4", "shot_02.mp4", "shot_03.mp4"]
    for shot, path in zip(scene.shots, paths):
        frames, fps, _ = read_mp4(path)
        assert np.array_equal(frames, read_mp4(shot.video_path)[0]) and fps == FPS
        record = read_video_metadata(path)
        assert record["shot"] == shot.number and record["caption"] == shot.caption
        assert record["seed"] == 1234 and record["settings"] == scene.settings and record["prompt"] == scene.prompt
    _assert_no_temp_files(tmp_path)


def test_read_video_metadata_rejects_foreign_files(scene: ExportScene) -> None:
    with pytest.raises(ExportError, match="not written by a HoloCine export"):
        read_video_metadata(scene.shots[0].video_path)


def test_validation_names_the_broken_shot(scene: ExportScene) -> None:
    gap = dataclasses.replace(scene.shots[1], frame_range=(10, 21))
    with pytest.raises(ExportError, match=r"shot 2 has frame range \[10, 21\) but must start at frame 9"):
        validate_scene(dataclasses.replace(scene, shots=(scene.shots[0], gap, scene.shots[2])))
    wrong_take = dataclasses.replace(scene.shots[0], video_path=scene.shots[1].video_path)
    shifted = scene.shots[1:]  # frame ranges still tile, but the take has 12 frames, not 9
    bad = dataclasses.replace(scene, shots=(wrong_take, *shifted))
    validate_scene(bad)
    with pytest.raises(ExportError, match="shot 1's take .* has 12 frames but its frame range"):
        validate_scene(bad, check_clips=True)
    with pytest.raises(ExportError, match="has 12 frames"):
        export_scene_video(bad, Path("unused.mp4"))


def test_otio_timeline_round_trip(scene: ExportScene, tmp_path: Path) -> None:
    export_shot_videos(scene, tmp_path / "shots")
    path = write_timeline(scene, tmp_path / "scene.otio", "otio", tmp_path / "shots")
    timeline = otio.adapters.read_from_file(str(path))
    clips = list(timeline.find_clips())
    assert len(clips) == 3
    for shot, clip in zip(scene.shots, clips):
        start, end = shot.frame_range
        assert clip.source_range == otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, FPS), otio.opentime.RationalTime(end - start, FPS)
        )
        assert clip.range_in_parent().start_time == otio.opentime.RationalTime(start, FPS)
        assert (tmp_path / clip.media_reference.target_url).is_file()
        (marker,) = clip.markers
        assert marker.name == marker.comment == shot.caption
        assert marker.metadata["holocine"]["caption"] == shot.caption
        assert list(clip.metadata["holocine"]["frame_range"]) == [start, end]
    assert timeline.metadata["holocine"]["seed"] == 1234


def test_build_timeline_with_absolute_urls(scene: ExportScene, tmp_path: Path) -> None:
    timeline = build_timeline(scene, shot_media_urls(scene, tmp_path))
    urls = [clip.media_reference.target_url for clip in timeline.find_clips()]
    assert urls == [(tmp_path / f"shot_0{n}.mp4").resolve().as_uri() for n in (1, 2, 3)]
    assert timeline.duration() == otio.opentime.RationalTime(33, FPS)


def _read_back(path: Path, fmt: str, fps: float) -> list[tuple[str, int, int, str]]:
    """(name, start frame, frame count, first marker name) per clip, at the scene's fps."""
    options = {"rate": interchange_rate(fps)} if fmt == "edl" else {}
    timeline = otio.adapters.read_from_file(str(path), **options)
    rows = []
    for clip in timeline.find_clips():
        placed = clip.range_in_parent()
        assert clip.source_range.start_time.value == 0
        rows.append(
            (
                clip.name,
                round(placed.start_time.rescaled_to(fps).value),
                round(clip.source_range.duration.rescaled_to(fps).value),
                clip.markers[0].name,
            )
        )
    return rows


@pytest.mark.parametrize("fmt", ["edl", "fcp7xml"])
@pytest.mark.parametrize("fps", [8, 15, 24, 25])
def test_edl_and_fcp7_round_trip(scene: ExportScene, tmp_path: Path, fmt: str, fps: int) -> None:
    at_rate = dataclasses.replace(scene, fps=fps)
    path = write_timeline(at_rate, tmp_path / f"scene{TIMELINE_SUFFIXES[fmt]}", fmt, tmp_path / "shots")
    rows = _read_back(path, fmt, fps)
    # EDL text is folded to ASCII and the adapter upper-cases LOC names; FCP 7 XML keeps them exactly.
    expected_names = [fold_text(c, ASCII).upper() if fmt == "edl" else c for c in CAPTIONS]
    assert rows == [
        (f"Shot {s.number}", s.frame_range[0], s.frame_count, name) for s, name in zip(scene.shots, expected_names)
    ]
    if fmt == "edl":
        text = path.read_text(encoding="utf-8")
        assert re.findall(r"^\d{3}  (\S+)", text, flags=re.M) == ["SHOT001", "SHOT002", "SHOT003"]
        assert "* FROM CLIP: shots/shot_01.mp4" in text and text.isascii()
        assert "WALKS TOWARD THE CAMERA - RAIN." in text and "RAIN ON HER FACE. ?" in text


def test_edl_refuses_rates_without_timecode(scene: ExportScene, tmp_path: Path) -> None:
    assert (interchange_rate(8), interchange_rate(15), interchange_rate(16)) == (24, 30, 48)
    with pytest.raises(ExportError, match="a 7 fps scene cannot be written as EDL"):
        write_timeline(dataclasses.replace(scene, fps=7), tmp_path / "scene.edl", "edl", tmp_path)
    with pytest.raises(ExportError, match="timeline format 'aaf'"):
        write_timeline(scene, tmp_path / "scene.aaf", "aaf", tmp_path)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def _pdf_text(path: Path) -> tuple[int, str]:
    reader = PdfReader(path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), " ".join(text.split())


def test_storyboard_pdf(scene: ExportScene, tmp_path: Path) -> None:
    assert pdf_fonts.storyboard_font().regular is not None, (
        "DejaVu Sans missing: scripts/setup.sh installs Debian's fonts-dejavu-core"
    )
    pages, text = _pdf_text(write_storyboard_pdf(scene, tmp_path / "board.pdf"))
    assert 2 <= pages <= 4
    assert scene.description in text and "Eleni Ελένη" in text and "[character1]" in text
    for caption in CAPTIONS[::2]:
        assert caption in text
    assert "Close-up of [character1], rain on her face. 雨" in text.replace("\x00", ""), "Noto Sans CJK draws the 雨"
    assert "TC 00:00:01:01 - 00:00:02:05" in text and "Where are you?" in text
    assert "close-up / eye level / static" in text
    _assert_no_temp_files(tmp_path)


def test_storyboard_pdf_without_dejavu_falls_back_to_latin_1(
    scene: ExportScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf_fonts, "_DEJAVU_DIRS", ())
    _, text = _pdf_text(write_storyboard_pdf(scene, tmp_path / "board.pdf"))
    assert "Eleni ?????" in text and "walks toward the camera - rain." in text
    assert scene.description in text


def test_timecode() -> None:
    assert frames_to_timecode(9, 8) == "00:00:01:01"
    assert frames_to_timecode(25 * 3661 + 3, 25) == "01:01:01:03"
    assert frames_to_timecode(24, 24000 / 1001) == "00:00:01:00"


def test_contact_sheet(scene: ExportScene, tmp_path: Path) -> None:
    path = write_contact_sheet(scene, tmp_path / "sheet.png", frames_per_shot=4)
    layout = contact_sheet_layout(scene, 4)
    with Image.open(path) as image:
        sheet = np.asarray(image.convert("RGB")).astype(int)
        assert image.size == layout.size
    for row, colour in enumerate(COLOURS):
        for column in range(4):
            left, top, right, bottom = layout.cell_box(row, column)
            centre = sheet[(top + bottom) // 2, (left + right) // 2]
            assert np.abs(centre - colour).max() < 12, f"shot {row + 1} frame {column + 1} is {centre}"
    _assert_no_temp_files(tmp_path)
