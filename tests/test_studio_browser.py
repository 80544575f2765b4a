"""The storyboard as a director uses it: Debian's Chromium through Playwright, real mouse and keyboard.

Every check reads the result where it lands: SQLite through storage, the compiled prompt, and
what the page's DOM shows (loaded images, the cut player's frames, text nodes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from browser import ARTIFACTS, chromium, launched
from playwright.sync_api import Page, expect

from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services

HOSTILE = '<img id="evil" src="x" onerror="window.pwned=1"><b id="bold">b</b>${window.pwned=2}\\u'


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    built = build_services(StudioSettings(data_dir=tmp_path_factory.mktemp("browser-data"), device="cpu"))
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


def make_scene(services, name: str, actions=("Wide shot of the pier.", "A woman walks.", "She looks at the sea.")):
    storage = services.storage
    project = storage.projects.create(name)
    scene = storage.scenes.add(
        project.id, title="Night pier", description="A rainy pier at night", fps=8, width=160, height=96
    )
    for action in actions:
        storage.shots.add(scene.id, action=action, duration_s=1.0)
    return project, storage.scenes.get(scene.id)


def render(services, scene_id: int, seed: int = 0) -> int:
    updates = list(services.renders.run(RenderRequest(scene_id, steps=2, seed=seed)))
    return updates[-1].render.id


def open_scene(page: Page, url: str, project_name: str) -> None:
    """Pick the project the way a person does: open the dropdown, type, choose."""
    page.goto(url)
    box = page.locator("#project-picker input")
    box.click()
    box.fill(project_name[:12])
    page.get_by_role("option", name=project_name).first.click()
    expect(page.locator("#board .card[data-shot-id]").first).to_be_visible(timeout=20_000)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def card_ids(page: Page) -> list[int]:
    return [
        int(i) for i in page.locator("#board .card[data-shot-id]").evaluate_all("cs => cs.map(c => c.dataset.shotId)")
    ]


def test_after_a_render_every_card_shows_its_selected_take(services, url, browser):
    project, scene = make_scene(services, "Pictures")
    render(services, scene.scene.id)
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    open_scene(page, url, project.name)
    cards = page.locator("#board .card[data-shot-id]")
    expect(cards).to_have_count(3)
    selected = services.storage.takes.selected_for_scene(scene.scene.id)
    for index, shot in enumerate(scene.shots):
        image = cards.nth(index).locator(".picture img")
        expect(image).to_be_visible()
        wait_until(lambda image=image: image.evaluate("i => i.complete && i.naturalWidth > 0"), "the still loads")
        assert selected[shot.id].thumbnail_path in image.get_attribute("src")
        expect(cards.nth(index).locator(".badge")).to_have_text("rendered")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)
    page.close()


def test_drag_the_third_card_before_the_first_saves_the_order(services, url, browser):
    project, scene = make_scene(services, "Dragging")
    first, second, third = (s.id for s in scene.shots)
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    open_scene(page, url, project.name)
    target = page.locator(f'#board .card[data-shot-id="{first}"]')
    page.locator(f'#board .card[data-shot-id="{third}"]').drag_to(target, target_position={"x": 10, "y": 60})
    wait_until(
        lambda: [s.id for s in services.storage.scenes.get(scene.scene.id).shots] == [third, first, second], "saved"
    )
    compiled = services.renders.compile(services.storage.scenes.get(scene.scene.id))
    assert compiled.shot_captions[0].endswith("She looks at the sea.")
    wait_until(lambda: card_ids(page) == [third, first, second], "the board shows the new order")
    expect(page.locator("#board .segment").first).to_have_text("1")
    page.close()


def test_keyboard_moves_the_selection_and_adds_a_shot(services, url, browser):
    project, scene = make_scene(services, "Keys")
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    open_scene(page, url, project.name)
    page.locator("#board .card[data-shot-id]").first.click()
    expect(page.locator("#shot-editor .title")).to_contain_text("Shot 1")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#shot-editor .title")).to_contain_text("Shot 2")
    page.keyboard.press("n")
    wait_until(lambda: len(services.storage.scenes.get(scene.scene.id).shots) == 4, "a shot was added")
    assert services.storage.scenes.get(scene.scene.id).shots[2].action == ""  # right after the selected shot
    expect(page.locator("#shot-editor .title")).to_contain_text("Shot 3")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#board .card.selected .delete").click()
    wait_until(lambda: len(services.storage.scenes.get(scene.scene.id).shots) == 3, "the shot was deleted")
    page.close()


def test_click_a_take_in_the_filmstrip_selects_it_and_reloads_the_cut(services, url, browser):
    project, scene = make_scene(services, "Takes")
    render(services, scene.scene.id, seed=0)
    scene_id = scene.scene.id
    shot = scene.shots[1]
    services.storage.shots.update(shot.id, version=shot.version, duration_s=2.0)
    for _ in services.renders.run(RenderRequest(scene_id, steps=2, seed=5)):
        pass  # shot 2 now has a second, longer take, not selected: the director picks it
    old, new = sorted(services.storage.takes.list_for_shot(shot.id), key=lambda t: t.id)
    assert old.selected and not new.selected
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    open_scene(page, url, project.name)
    page.locator(f'#board .card[data-shot-id="{shot.id}"]').click()
    strip = page.locator("#filmstrip .take")
    expect(strip).to_have_count(2)
    expect(strip.first).to_contain_text("seed 5")
    expect(page.locator("#filmstrip .take.selected")).to_contain_text("seed 0")
    before = int(page.locator("#cut-player .cut").get_attribute("data-frames"))
    page.locator(f'#filmstrip .take[data-take-id="{new.id}"]').click()
    wait_until(lambda: services.storage.takes.list_for_shot(shot.id)[0].selected, "the new take is selected")
    selected = services.storage.takes.selected_for_scene(scene_id)
    expected = sum(int(read_frames(services, selected[s.id].video_path)) for s in scene.shots)
    assert expected > before
    expect(page.locator("#cut-player .cut")).to_have_attribute("data-frames", str(expected), timeout=20_000)
    player = page.locator("#cut-player video.player")
    wait_until(lambda: player.evaluate("v => v.readyState >= 1"), "the cut's metadata loads")
    assert round(player.evaluate("v => v.duration") * 8) == expected
    page.close()


def read_frames(services, video_path: str) -> int:
    from engine.video import count_frames

    return count_frames(services.storage.media.path(video_path))


def test_typing_saves_and_a_second_page_gets_the_stale_edit_message(services, url, browser):
    project, scene = make_scene(services, "Typing")
    shot = scene.shots[0]
    first = browser.new_page(viewport={"width": 1500, "height": 1200})
    second = browser.new_page(viewport={"width": 1500, "height": 1200})
    for page in (first, second):
        open_scene(page, url, project.name)
        page.locator(f'#board .card[data-shot-id="{shot.id}"]').click()
        expect(page.locator("#shot-editor textarea[name=action]")).to_have_value(shot.action)
    action = first.locator("#shot-editor textarea[name=action]")
    action.click()
    action.press("End")
    first.keyboard.type(" Rain starts.")
    wait_until(lambda: _action(services, scene.scene.id, 0).endswith("Rain starts."), "saved as typed")
    expect(first.locator("#shot-editor .state")).to_have_text("Saved")
    expect(first.locator(f'#board .card[data-shot-id="{shot.id}"] .action')).to_contain_text("Rain starts.")

    stale = second.locator("#shot-editor textarea[name=action]")
    stale.click()
    stale.press("End")
    second.keyboard.type(" Fog.")
    expect(second.locator("#shot-editor .state.error")).to_contain_text("changed by someone else", timeout=20_000)
    assert _action(services, scene.scene.id, 0).endswith("Rain starts.")  # the first page's edit stays
    expect(stale).to_have_value(shot.action + " Fog.")  # and the second page keeps what was typed
    first.close()
    second.close()


def _action(services, scene_id: int, index: int) -> str:
    return services.storage.scenes.get(scene_id).shots[index].action


def test_html_and_script_in_every_text_field_show_as_text(services, url, browser):
    storage = services.storage
    project, scene = make_scene(services, "Hostile " + HOSTILE, actions=("A" + HOSTILE,))
    character = storage.characters.add(project.id, "Mara" + HOSTILE, description="look" + HOSTILE, notes="n" + HOSTILE)
    shot = scene.shots[0]
    storage.shots.update(
        shot.id,
        version=shot.version,
        dialogue="d" + HOSTILE,
        notes="notes" + HOSTILE,
        shot_size="size" + HOSTILE,
        character_ids=[character.id],
    )
    render(services, scene.scene.id)
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    open_scene(page, url, project.name)
    card = page.locator(f'#board .card[data-shot-id="{shot.id}"]')
    expect(card.locator(".action")).to_have_text("A" + HOSTILE)
    expect(card.locator(".chip")).to_have_text("Mara" + HOSTILE)
    expect(card.locator(".framing")).to_contain_text("size" + HOSTILE)
    card.click()
    expect(page.locator("#shot-editor textarea[name=dialogue]")).to_have_value("d" + HOSTILE)
    expect(page.locator("#shot-editor textarea[name=notes]")).to_have_value("notes" + HOSTILE)
    expect(page.locator("#shot-editor input[name=shot_size]")).to_have_value("size" + HOSTILE)
    expect(page.locator("#filmstrip .take")).to_have_count(1)
    page.get_by_role("tab", name="Scene & cast").click()
    expect(page.locator("#cast .person[data-character-id] .look")).to_have_text("look" + HOSTILE)
    page.locator("#cast .person[data-character-id]").first.click()
    expect(page.locator("#character-editor input[name=name]")).to_have_value("Mara" + HOSTILE)
    expect(page.locator("#project-picker input")).to_have_value(project.name)
    for selector in ("#evil", "#bold"):
        assert page.locator(selector).count() == 0, f"{selector} reached the DOM"
    assert page.evaluate("window.pwned") is None  # neither onerror nor ${...} ran
    page.close()


def test_render_from_the_header_shows_live_previews_then_the_takes(services, url, browser):
    project, scene = make_scene(services, "Rendering")
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    open_scene(page, url, project.name)
    page.get_by_role("tab", name="Render").click()
    steps = page.get_by_label("Steps").first
    steps.fill("30")
    steps.press("Enter")
    page.locator("#render").click()
    preview = page.locator("#board .card.rendering .picture img[src*='previews']")
    expect(preview.first).to_be_visible(timeout=60_000)  # the x0 estimate replaces the picture while it denoises
    expect(page.locator("#board .card .badge", has_text="rendered")).to_have_count(3, timeout=120_000)
    render = services.storage.renders.list_for_scene(scene.scene.id)[0]
    expect(page.get_by_text(f"Render {render.id} done").first).to_be_visible(timeout=10_000)  # the toast
    page.get_by_role("tab", name="Jobs").click()
    expect(page.locator(f'#jobs .job.done[data-render-id="{render.id}"]')).to_have_count(1)
    assert render.status == "done" and render.settings["steps"] == 30
    for shot in scene.shots:
        assert len(services.storage.takes.list_for_shot(shot.id)) == 1

    # The cut plays under the board; clicking a card seeks it to that shot's start.
    player = page.locator("#cut-player video.player")
    wait_until(lambda: player.evaluate("v => v.readyState >= 1"), "the cut loads")
    page.locator(f'#board .card[data-shot-id="{scene.shots[2].id}"]').click()
    start = float(page.locator("#cut-player .marker").nth(2).get_attribute("data-start"))
    wait_until(lambda: abs(player.evaluate("v => v.currentTime") - start) < 0.01, "the player seeks to shot 3")
    assert start > 0
    page.close()


def test_two_takes_compare_side_by_side(services, url, browser):
    project, scene = make_scene(services, "Compare")
    render(services, scene.scene.id, seed=0)
    render(services, scene.scene.id, seed=1)
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    open_scene(page, url, project.name)
    takes = page.locator("#filmstrip .take")
    expect(takes).to_have_count(2)
    takes.first.hover()
    wait_until(lambda: takes.first.locator("video").evaluate("v => !v.paused"), "hovering plays the take")
    assert takes.first.locator("video").evaluate("v => v.muted")
    for index in (0, 1):
        takes.nth(index).locator(".pick-compare").check()
    comparison = page.locator("#filmstrip .comparison")
    expect(comparison).to_be_visible()
    sources = comparison.locator("video").evaluate_all("vs => vs.map(v => v.getAttribute('src'))")
    paths = [t.video_path for t in services.storage.takes.list_for_shot(scene.shots[0].id)]
    assert [any(p in s for p in paths) for s in sources] == [True, True] and sources[0] != sources[1]
    comparison.locator(".play-both").click()
    videos = comparison.locator("video")
    wait_until(lambda: videos.evaluate_all("vs => vs.every(v => !v.paused)"), "both play")
    assert abs(videos.nth(0).evaluate("v => v.currentTime") - videos.nth(1).evaluate("v => v.currentTime")) < 0.25
    page.close()
