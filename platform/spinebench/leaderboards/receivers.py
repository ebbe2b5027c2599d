"""What the leaderboards app does when a lower app signals (connected in LeaderboardsConfig.ready)."""

from .services import rerank_phase


def rerank_on_ranking_changed(sender, *, phase_pk: int, **kwargs) -> None:
    rerank_phase(phase_pk)
