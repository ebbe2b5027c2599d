from django.apps import AppConfig


class ChallengesConfig(AppConfig):
    name = "spinebench.challenges"
    label = "challenges"
