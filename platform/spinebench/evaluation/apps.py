from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    """How a submission is scored: versioned evaluations (a submission may have several, one current per phase
    evaluation version; a re-score switches a whole phase at once) and organizers' evaluation images."""

    name = "spinebench.evaluation"
    label = "evaluation"

    def ready(self) -> None:
        from .rescoring import register_rescore_starter
        from .tasks import rescore_phase

        register_rescore_starter(lambda job_pk: rescore_phase.delay(job_pk=job_pk))
        from spinebench.challenges.registry import register_declaration

        from .images import phase_declaration

        register_declaration(phase_declaration)  # custom phases' metrics, read by challenges.registry
