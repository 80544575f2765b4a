"""HoloCine multi-shot video generation on diffusers: a library a researcher can import alone.

from engine import SceneSpec, Shot, RenderSettings, load_pipeline
pipe, info = load_pipeline()          # the toy-world model unless weights are configured
for event in pipe.generate(SceneSpec("A lighthouse.", (Shot("Wide."), Shot("Close."))), RenderSettings(steps=4)):
    ...

Names are imported on first use (PEP 562, as diffusers does): `import engine.limits` or
`engine.errors` loads no torch, so the storage layer can share the engine's ranges without
loading the model.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "errors": ("BackendUnavailableError", "HoloCineError", "SceneValidationError", "WeightsError"),
    "events": ("Cancelled", "Preview", "Progress", "RenderEvent", "SceneFinished", "ShotDecoded"),
    "pipeline": ("DEFAULT_NEGATIVE_PROMPT", "HoloCinePipeline", "ModelDefaults", "RenderSettings"),
    "scene": ("SceneSpec", "Shot", "ShotLayout", "format_prompt", "parse_prompt", "snap_frames"),
    "weights": ("EngineInfo", "WeightsSpec", "load_pipeline"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
