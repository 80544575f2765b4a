"""HoloCine multi-shot video generation on diffusers: a library a researcher can import alone.

from engine import SceneSpec, Shot, RenderSettings, load_pipeline
pipe, info = load_pipeline()          # the toy-world model unless weights are configured
for event in pipe.generate(SceneSpec("A lighthouse.", (Shot("Wide."), Shot("Close."))), RenderSettings(steps=4)):
    ...
"""

from .errors import BackendUnavailableError, HoloCineError, SceneValidationError, WeightsError
from .events import Cancelled, Preview, Progress, RenderEvent, SceneFinished, ShotDecoded
from .pipeline import DEFAULT_NEGATIVE_PROMPT, HoloCinePipeline, ModelDefaults, RenderSettings
from .scene import SceneSpec, Shot, ShotLayout, format_prompt, parse_prompt, snap_frames
from .weights import EngineInfo, WeightsSpec, load_pipeline

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "BackendUnavailableError",
    "Cancelled",
    "EngineInfo",
    "HoloCineError",
    "HoloCinePipeline",
    "ModelDefaults",
    "Preview",
    "Progress",
    "RenderEvent",
    "RenderSettings",
    "SceneFinished",
    "SceneSpec",
    "SceneValidationError",
    "Shot",
    "ShotDecoded",
    "ShotLayout",
    "WeightsError",
    "WeightsSpec",
    "format_prompt",
    "load_pipeline",
    "parse_prompt",
    "snap_frames",
]
