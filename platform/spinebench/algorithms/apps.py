from django.apps import AppConfig


class AlgorithmsConfig(AppConfig):
    name = "spinebench.algorithms"
    label = "algorithms"
    verbose_name = "Algorithm containers"

    def ready(self) -> None:
        from spinebench.challenges.bundles import register_container_handler

        from . import signals  # noqa: F401 - connects the container stop on cancel/fail
        from .bundles import apply_container_config

        register_container_handler(apply_container_config)  # a phase's `container:` mapping in challenge.yaml
