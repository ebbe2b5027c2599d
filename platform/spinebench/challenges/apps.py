from django.apps import AppConfig


class ChallengesConfig(AppConfig):
    name = "spinebench.challenges"
    label = "challenges"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from .models import Challenge, Registration
        from .roles import forget_roles

        # A role changed: the request that changed it must not answer from its memo.
        post_save.connect(forget_roles, sender=Registration, dispatch_uid="challenges-roles-registration-saved")
        post_delete.connect(forget_roles, sender=Registration, dispatch_uid="challenges-roles-registration-deleted")
        m2m_changed.connect(
            forget_roles, sender=Challenge.organizers.through, dispatch_uid="challenges-roles-organizers-changed"
        )
