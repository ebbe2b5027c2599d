from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "spinebench.submissions"
    label = "submissions"
