from django.apps import AppConfig


class AlgorithmsConfig(AppConfig):
    name = "spinebench.algorithms"
    label = "algorithms"
    verbose_name = "Algorithm containers"

    def ready(self) -> None:
        from django.conf import settings

        from spinebench.challenges.bundles import register_container_handler
        from spinebench.challenges.models import Phase
        from spinebench.submissions.services import register_pipeline

        from . import (
            jobs,
            runner,
            signals,  # noqa: F401 - connects the container stop on cancel/fail
        )
        from .bundles import apply_container_config
        from .tasks import process_algorithm_submission, score_algorithm_submission

        # Containers are labelled with this site's instance id; recovery removes only those (a shared engine).
        runner.configure_scope(settings.SPINEBENCH_INSTANCE_ID)
        # A remote worker's finished run is scored on the scoring queue (jobs.finish never imports the tasks).
        jobs.register_scoring(lambda pk: score_algorithm_submission.delay(submission_pk=pk))
        register_container_handler(apply_container_config)  # a phase's `container:` mapping in challenge.yaml
        register_pipeline(
            str(Phase.SubmissionKind.ALGORITHM), lambda pk: process_algorithm_submission.delay(submission_pk=pk)
        )

        from spinebench.evaluation.rescoring import register_predictions_source

        from .execution import stored_predictions

        # A re-score reads an algorithm's predictions where its container runs left them, or from the storage.
        register_predictions_source(str(Phase.SubmissionKind.ALGORITHM), stored_predictions)

        from spinebench.celery import QUEUE_CONTAINERS_CPU
        from spinebench.submissions.scoring import register_image_evaluator
        from spinebench.submissions.services import CUSTOM_EVALUATION_PIPELINE

        from .evaluation_images import evaluate_with_image
        from .tasks import evaluate_custom_submission

        register_image_evaluator(evaluate_with_image)  # custom phases are scored by their evaluation image
        register_pipeline(  # ... on a container worker, which reaches the engine
            CUSTOM_EVALUATION_PIPELINE,
            lambda pk: evaluate_custom_submission.apply_async(kwargs={"submission_pk": pk}, queue=QUEUE_CONTAINERS_CPU),
        )
