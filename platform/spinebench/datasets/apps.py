from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "spinebench.datasets"
    label = "datasets"
