from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "spinebench.leaderboards"
    label = "leaderboards"
