"""A real browser (Debian's Chromium through Playwright) edits a shot, renders, and sees the scene video load."""

from __future__ import annotations

import time

import pytest
from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port
from playwright.sync_api import expect, sync_playwright

from studio.services import StudioSettings, build_services
from studio.ui import build_app


@pytest.fixture
def studio_url(tmp_path):
    services = build_services(StudioSettings(data_dir=tmp_path, device="cpu"))
    project = services.storage.projects.create("Pier")
    scene = services.storage.scenes.add(
        project.id,
        title="Night pier",
        description="A rainy pier at night, neon reflections",
        fps=8,
        width=160,
        height=96,
    )
    for action in (
        "Wide shot of the pier.",
        "A woman in a red coat walks.",
        'She looks at the <b id="injected">sea</b>.',
    ):
        services.storage.shots.add(scene.id, action=action)
    demo = build_app(services)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    yield url, services, scene.id
    demo.close()
    services.close()


def _pick(page, elem_id: str, label: str) -> None:
    """Choose `label` in a Gradio dropdown the way a person does: click, type, pick from the list."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(label[:12])
    page.get_by_role("option", name=label).first.click()


def _wait_until(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the browser's edit never reached the database"
        time.sleep(0.1)


def test_edit_a_shot_and_render_in_a_browser(studio_url):
    assert CHROMIUM.exists(), "install Debian's Chromium: apt-get install -y chromium (scripts/setup.sh --dev does)"
    url, services, scene_id = studio_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.goto(url)
        _pick(page, "project-picker", "Pier")
        expect(page.locator("#scene-picker input")).to_have_value("Night pier", timeout=20_000)
        page.get_by_role("tab", name="Storyboard").click()
        expect(page.get_by_text('<b id="injected">sea</b>').first).to_be_attached(timeout=20_000)
        assert page.locator("#injected").count() == 0  # caption text is shown as text, never as HTML
        _pick(page, "shot-picker", "2. A woman in a red coat walks.")
        action = page.locator("#shot-action textarea")
        expect(action).to_have_value("A woman in a red coat walks.", timeout=20_000)
        action.fill("A woman in a red coat runs toward the camera.")
        page.locator("#save-shot").click()
        _wait_until(lambda: services.storage.scenes.get(scene_id).shots[1].action.endswith("toward the camera."))

        page.get_by_role("tab", name="Render").click()
        page.locator("#render").click()
        video = page.locator("#scene-video video")
        video.wait_for(state="attached", timeout=120_000)
        page.wait_for_function(
            "() => { const v = document.querySelector('#scene-video video'); return v && v.readyState >= 1; }",
            timeout=60_000,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "studio_render.png"), full_page=True)
        browser.close()

    shot = services.storage.scenes.get(scene_id).shots[1]
    assert shot.action == "A woman in a red coat runs toward the camera."
    takes = services.storage.takes.list_for_shot(shot.id)
    assert len(takes) == 1 and "runs toward the camera" in takes[0].caption
