from django.apps import AppConfig


class TeamsConfig(AppConfig):
    """Teams of a challenge. It sits between challenges and datasets: it reads challenges and accounts, and tells the
    apps above it (submissions, notifications) what happened through the signals in `signals.py`."""

    name = "spinebench.teams"
    label = "teams"
    verbose_name = "Teams"
