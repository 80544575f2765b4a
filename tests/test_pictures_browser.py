"""Pictures in, as a director meets them: Debian's Chromium through Playwright on a launched studio.

A keyframe chosen with the card's file picker becomes the card's picture (served from the
project's pictures/ folder, with its "keyframe" mark) until the shot has a take; a file that
is not an image gets a toast naming the field and the shot keeps its keyframe; a reference
image chosen on a character card shows on the cast; "Use this frame as the keyframe" under
the cut player stores the frame under the playhead, pixel for pixel.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from browser import ARTIFACTS, chromium, launched
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from engine.video import read_mp4
from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services


def drawing(background: tuple[int, int, int], shape: str, colour: tuple[int, int, int]) -> bytes:
    """A toy-world picture: one coloured shape on a plain ground, as a PNG file's bytes."""
    image = Image.new("RGB", (320, 180), background)
    draw = ImageDraw.Draw(image)
    box = (110, 40, 210, 140)
    draw.ellipse(box, fill=colour) if shape == "circle" else draw.rectangle(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    built = build_services(StudioSettings(data_dir=tmp_path_factory.mktemp("pictures-browser"), device="cpu"))
    yield built
    built.close()


@pytest.fixture(scope="module")
def url(services):
    with launched(services) as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    with chromium() as opened:
        yield opened


def make_scene(services, name: str):
    storage = services.storage
    project = storage.projects.create(name)
    scene = storage.scenes.add(
        project.id, title="Toy world", description="A flat blue world", fps=8, width=160, height=96
    )
    dot = storage.characters.add(project.id, "Dot", description="a red circle")
    for action in ("Dot rolls in from the left.", "Dot stops in the middle.", "A green square waits."):
        storage.shots.add(scene.id, action=action, duration_s=1.0)
    first = storage.scenes.get(scene.id).shots[0]
    storage.shots.update(first.id, version=first.version, character_ids=[dot.id])
    return project, storage.scenes.get(scene.id)


def open_scene(page: Page, url: str, project_name: str) -> None:
    page.goto(url)
    box = page.locator("#project-picker input")
    box.click()
    box.fill(project_name[:12])
    page.get_by_role("option", name=project_name).first.click()
    expect(page.locator("#board .card[data-shot-id]").first).to_be_visible(timeout=20_000)


def choose_file(page: Page, selector: str, name: str, data: bytes, mime: str = "image/png") -> None:
    page.locator(selector).set_input_files({"name": name, "mimeType": mime, "buffer": data})


def test_a_keyframe_chosen_on_a_card_is_its_picture_and_a_bad_file_is_refused(services, url, browser):
    project, scene = make_scene(services, "Keyframes")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_scene(page, url, project.name)
    card = page.locator("#board .card[data-shot-id]").nth(1)
    choose_file(
        page,
        "#board .card[data-shot-id]:nth-child(2) .keyframe-file",
        "dot.png",
        drawing((40, 60, 200), "circle", (220, 30, 30)),
    )
    image = card.locator("img.still")
    expect(card.locator(".keyframe-mark")).to_have_text("keyframe", timeout=20_000)
    stored = services.storage.shots.get(scene.shots[1].id).keyframe_path
    assert stored is not None and stored in image.get_attribute("src")
    page.wait_for_function("(i) => i.complete && i.naturalWidth === 320", arg=image.element_handle())
    choose_file(
        page, "#board .card[data-shot-id]:nth-child(2) .keyframe-file", "notes.txt", b"not a picture", "text/plain"
    )
    expect(page.get_by_text("keyframe: notes.txt is not an image").first).to_be_visible(timeout=20_000)
    assert services.storage.shots.get(scene.shots[1].id).keyframe_path == stored
    choose_file(
        page,
        "#board .card[data-shot-id]:nth-child(3) .keyframe-file",
        "square.png",
        drawing((40, 60, 200), "square", (30, 180, 60)),
    )
    expect(page.locator("#board .card[data-shot-id]").nth(2).locator(".keyframe-mark")).to_be_visible(timeout=20_000)

    page.get_by_role("tab", name="Scene & cast").click()
    person = page.locator("#cast .person[data-character-id]").first
    person.click()
    choose_file(
        page,
        "#cast .person[data-character-id] .reference-file",
        "dot-reference.png",
        drawing((250, 250, 250), "circle", (220, 30, 30)),
    )
    expect(person.locator("img.reference")).to_be_visible(timeout=20_000)
    reference = services.storage.characters.list_for_project(project.id)[0].reference_path
    assert reference is not None and reference in person.locator("img.reference").get_attribute("src")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#board img, #cast img')).every(i => i.complete && i.naturalWidth > 0)"
    )
    page.locator("#board .card[data-shot-id]").nth(1).click()
    page.wait_for_timeout(800)
    page.add_style_tag(content=".toast-wrap { display: none !important; }")  # the refusal's toast, seen above
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "pictures.png"), full_page=True)  # the README's docs/pictures.png
    page.close()


def test_use_this_frame_stores_the_frame_under_the_playhead(services, url, browser):
    project, scene = make_scene(services, "Frames")
    updates = list(services.renders.run(RenderRequest(scene.scene.id, steps=2)))
    assert updates[-1].render.status == "done"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_scene(page, url, project.name)
    player = page.locator("#cut-player video.player")
    expect(player).to_be_visible(timeout=20_000)
    page.wait_for_function("(v) => v.readyState >= 1", arg=player.element_handle())
    marker = page.locator("#cut-player .marker").nth(1)
    start = int(marker.get_attribute("data-start-frame"))
    player.evaluate(f"v => {{ v.currentTime = ({start} + 2.5) / 8; }}")  # inside shot 2's third frame
    page.wait_for_function("(v) => !v.seeking", arg=player.element_handle())
    page.get_by_role("button", name="Use this frame as the keyframe").click()
    shot_id = scene.shots[1].id
    take = services.storage.takes.selected_for_scene(scene.scene.id)[shot_id]
    expect(page.locator("#board .card[data-shot-id]").nth(1).locator("img.keyframe-inset")).to_be_visible(
        timeout=20_000
    )
    stored = services.storage.media.path(services.storage.shots.get(shot_id).keyframe_path)
    frames = read_mp4(services.storage.media.path(take.video_path))[0]
    assert np.array_equal(np.asarray(Image.open(stored)), frames[2])
    page.close()
