from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "spinebench.uploads"
    label = "uploads"
    verbose_name = "Uploads and storage quota"
