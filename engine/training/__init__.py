"""Training HoloCine: flow matching on multi-shot clips through the engine's own pipeline."""

from .config import TrainConfig, TrainingConfigError
from .trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "TrainingConfigError", "train"]
