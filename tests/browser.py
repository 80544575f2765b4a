"""What the browser tests share: Debian's Chromium with the flags this closed network needs, and a launched studio."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from studio.services import Services
from studio.ui import build_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"  # git-ignored
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched(services: Services) -> Iterator[str]:
    """The studio's app served on a free loopback port, its render worker running; its URL."""
    services.worker.start()
    demo = build_app(services)
    demo.queue()
    _, url, _ = demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=free_port(),
        quiet=True,
        allowed_paths=[str(services.settings.data_dir)],
    )
    try:
        yield url
    finally:
        demo.close()
        services.worker.stop()


@contextmanager
def chromium() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "install Debian's Chromium: apt-get install -y chromium (scripts/setup.sh --dev does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
