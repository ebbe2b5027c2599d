from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "spinebench.leaderboards"
    label = "leaderboards"

    def ready(self) -> None:
        from spinebench.challenges.signals import ranking_changed

        from .receivers import rerank_on_ranking_changed

        ranking_changed.connect(rerank_on_ranking_changed, dispatch_uid="leaderboards-rerank")
