from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    """How a submission is scored: versioned evaluations (a submission may have several, one current per phase
    evaluation version; a re-score switches a whole phase at once) and organizers' evaluation images."""

    name = "spinebench.evaluation"
    label = "evaluation"

    def ready(self) -> None:
        from spinebench.challenges.registry import register_declaration

        from .images import phase_declaration

        register_declaration(phase_declaration)  # custom phases' metrics, read by challenges.registry
