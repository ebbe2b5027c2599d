from django.apps import AppConfig


class AlgorithmsConfig(AppConfig):
    name = "spinebench.algorithms"
    label = "algorithms"
    verbose_name = "Algorithm containers"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the container stop on cancel/fail
