from django.apps import AppConfig


class OrganizersConfig(AppConfig):
    """The organizers' workspace: the console pages and API of a challenge's organizers, and the audit trail of
    everything they do. The highest app: it may use every other one, none uses it (lower apps report organizer
    actions through `spinebench.challenges.signals.organizer_action`)."""

    name = "spinebench.organizers"
    label = "organizers"

    def ready(self) -> None:
        from . import audit, bundle_imports, dataset_uploads, tasks
        from .admin_site import restrict_admin_to_operators

        audit.connect()
        restrict_admin_to_operators()
        bundle_imports.register_import_starter(tasks.start_bundle_import_task)
        dataset_uploads.register_check_starter(tasks.start_dataset_check_task)
