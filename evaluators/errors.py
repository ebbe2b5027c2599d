"""Errors raised by the evaluators.

`PredictionError` messages are shown to participants: they name the file, the row or the case and what was
expected, and never contain ground-truth values. `GroundTruthError` is the organiser's problem (a broken hidden
dataset); its message is for organisers and operators only.
"""


class EvaluationError(ValueError):
    """Base class: anything that stops an evaluation with a one-line, human-readable reason."""


class PredictionError(EvaluationError):
    """The submitted predictions are missing, malformed or do not match the test set; safe to show a participant."""


class GroundTruthError(EvaluationError):
    """The ground truth is missing or malformed; for organisers, never shown to participants."""
