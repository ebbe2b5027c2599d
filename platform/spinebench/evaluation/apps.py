from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    """How a submission is scored: versioned evaluations (a submission may have several, one current per phase
    evaluation version; a re-score switches a whole phase at once) and organizers' evaluation images."""

    name = "spinebench.evaluation"
    label = "evaluation"
