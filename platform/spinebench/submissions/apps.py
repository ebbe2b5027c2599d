from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "spinebench.submissions"
    label = "submissions"

    def ready(self) -> None:
        from spinebench.challenges.models import Phase

        from .services import register_pipeline
        from .tasks import score_submission

        register_pipeline(str(Phase.SubmissionKind.CSV), lambda pk: score_submission.delay(submission_pk=pk))

        from spinebench.teams.signals import member_joined

        from .team_moves import move_submissions_to_team

        member_joined.connect(
            lambda sender, team, user, **kwargs: move_submissions_to_team(team=team, user=user),
            dispatch_uid="submissions.move_to_team", weak=False,
        )

        from spinebench.challenges.browse import baseline_methods
        from spinebench.challenges.tabs import register_tab_context

        from .baseline_runs import register_run_starter, runs_overview
        from .baseline_tasks import run_baseline_job

        register_run_starter(lambda pk: run_baseline_job.delay(run_pk=pk))

        register_tab_context(
            "baselines",
            lambda *, request, challenge, phases: {
                "methods": baseline_methods(phase.task for phase in phases),
                **runs_overview(phases),
            },
        )
