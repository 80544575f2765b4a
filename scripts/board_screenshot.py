"""Make the README's picture of the board: the first example project rendered by the shipped toy model.

    python scripts/board_screenshot.py [--steps 20] [--out docs/board.png]

Builds a throwaway studio on the toy-world model, adds the example projects, renders the
first one, opens it in Chromium (Debian's, as the browser tests do) and saves a screenshot
of the page, quantised to a small PNG.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium, launched  # noqa: E402

from studio.examples import create_example_projects  # noqa: E402
from studio.renders import RenderRequest  # noqa: E402
from studio.services import StudioSettings, build_services  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "board.png")
    args = parser.parse_args()
    services = build_services(StudioSettings(data_dir=Path(tempfile.mkdtemp()), device="cpu"))
    scene_id = create_example_projects(services.storage)[0]
    for _ in services.renders.run(RenderRequest(scene_id, steps=args.steps)):
        pass
    project = services.storage.projects.get(services.storage.scenes.get(scene_id).scene.project_id)
    with launched(services) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.locator("#project-picker input").click()
        page.get_by_role("option", name=project.name, exact=True).click()
        page.wait_for_function(
            "() => { const imgs = document.querySelectorAll('#board .card img');"
            " return imgs.length > 0 && Array.from(imgs).every(i => i.complete && i.naturalWidth > 0); }"
        )
        page.locator("#board .card[data-shot-id]").nth(1).click()
        page.wait_for_function("() => document.querySelector('#shot-editor .title').textContent.includes('Shot 2')")
        page.wait_for_timeout(1500)
        raw = Path(tempfile.mkdtemp()) / "board.png"
        page.screenshot(path=str(raw), full_page=True)
    services.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(raw).convert("RGB").quantize(colors=128).save(args.out, optimize=True)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
