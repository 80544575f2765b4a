"""A hostile bundle imported through the browser: every string it carries reaches the page as text.

Gradio renders an error toast's message as HTML (scripts stripped, links, forms and images
kept); import errors quote the bundle's own fields. The bundle below puts a link, an image
pointing at a server this test runs, and a password form in its `format` field.
"""

from __future__ import annotations

import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser import ARTIFACTS, chromium, launched
from playwright.sync_api import expect

from studio.bundle import export_bundle
from studio.services import StudioSettings, build_services


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Recorder.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def bait_server():
    """A loopback server that records every request: an image the page fetched would land here."""
    _Recorder.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()


def test_a_hostile_bundle_shows_as_text_and_fetches_nothing(tmp_path, bait_server):
    bait_url, hits = bait_server
    services = build_services(StudioSettings(data_dir=tmp_path / "data", device="cpu"))
    project = services.storage.projects.create("Harbour")
    services.storage.scenes.add(project.id, description="A harbour", fps=8, width=160, height=96)
    good = export_bundle(services.storage, project.id, tmp_path / "good.zip")
    hostile_format = (
        f'<a id="evil-link" href="{bait_url}/link">click</a><img id="evil-img" src="{bait_url}/pixel.png">'
        '<form id="evil-form"><input type="password" name="pw"></form>'
    )
    bundle = tmp_path / "hostile.zip"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bundle, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "bundle.json":
                manifest = json.loads(data)
                manifest["format"] = hostile_format
                data = json.dumps(manifest).encode()
            target.writestr(name, data)
    projects = services.storage.projects.list_all()

    with launched(services) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(url)
        page.get_by_role("tab", name="Project").click()
        page.locator("#bundle-upload input[type=file]").set_input_files(str(bundle))
        expect(page.locator("#bundle-upload")).to_contain_text("hostile.zip", timeout=20_000)
        page.locator("#import-project").click()
        toast = page.get_by_text("this is not a studio bundle").first
        expect(toast).to_be_visible(timeout=20_000)
        assert '<img id="evil-img"' in toast.inner_text()  # the markup is there, as characters
        for selector in ("#evil-link", "#evil-img", "#evil-form", "input[type=password]"):
            assert page.locator(selector).count() == 0, f"{selector} reached the DOM"
        page.wait_for_timeout(500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hostile_bundle.png"))

    assert hits == [], f"the page fetched {hits}"
    assert services.storage.projects.list_all() == projects
    services.close()
