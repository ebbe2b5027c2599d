"""The evaluation app's models. Each kind lives in its own module below and is re-exported here, so that the
versioned evaluations and the evaluation images grow without touching each other."""

from .images import CustomEvaluation, DeclaredMetric, EvaluationImage, EvaluationImageRun
from .versions import PastEvaluation, RescoreJob, StagedScore

__all__ = [
    "CustomEvaluation", "DeclaredMetric", "EvaluationImage", "EvaluationImageRun", "PastEvaluation", "RescoreJob",
    "StagedScore",
]
