from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "spinebench.submissions"
    label = "submissions"

    def ready(self) -> None:
        from spinebench.challenges.models import Phase

        from .services import register_pipeline
        from .tasks import score_submission

        register_pipeline(str(Phase.SubmissionKind.CSV), lambda pk: score_submission.delay(submission_pk=pk))
