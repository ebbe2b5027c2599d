from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "spinebench.leaderboards"
    label = "leaderboards"

    def ready(self) -> None:
        from spinebench.challenges.signals import ranking_changed

        from .receivers import rerank_on_ranking_changed

        ranking_changed.connect(rerank_on_ranking_changed, dispatch_uid="leaderboards-rerank")

        from spinebench.access import can_see_scores
        from spinebench.challenges.tabs import register_tab_context

        from . import services
        from .tasks import compute_snapshot_statistics

        register_tab_context(
            "leaderboards",
            lambda *, request, challenge, phases: {
                # A blind phase's top rows are for its organizers only (the tab says the phase is blind).
                "boards": [
                    (phase, services.leaderboard_rows(phase)[:3] if can_see_scores(phase, request.user) else [])
                    for phase in phases
                ]
            },
        )

        services.register_statistics_starter(
            lambda snapshot_pk: compute_snapshot_statistics.apply_async(
                kwargs={"snapshot_pk": snapshot_pk}, countdown=services.STATISTICS_DELAY_SECONDS
            )
        )
