"""The studio's web UI (Gradio 6): a visual storyboard over the services. `build_app(services)` makes it."""

from .app import StudioUI, build_app

__all__ = ["StudioUI", "build_app"]
