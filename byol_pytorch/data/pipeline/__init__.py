"""The one path from what a trainer is given to the learner's input: prepared, sampled, loaded, batched."""

from .training import LearnerInput, SpanningSampler, TrainingData

__all__ = ["LearnerInput", "SpanningSampler", "TrainingData"]
