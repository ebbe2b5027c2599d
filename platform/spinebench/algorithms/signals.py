"""Stopping containers when their submission ends early: cancelled by its creator or failed (e.g. by the time-limit
sweep). The running task also notices at its next poll; this removes the containers at once."""

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from spinebench.submissions.models import Submission
from spinebench.submissions.status import Status

logger = logging.getLogger(__name__)


@receiver(post_save, sender=Submission, dispatch_uid="algorithms-stop-containers")
def stop_containers_of_ended_submission(sender, instance: Submission, **kwargs) -> None:
    if instance.status not in (Status.CANCELLED, Status.FAILED) or not instance.algorithm_archive:
        return
    pk = instance.pk

    def stop() -> None:
        from .execution import stop_submission_containers

        try:
            stop_submission_containers(pk)
        except Exception:  # noqa: BLE001 - the engine may be unreachable; recovery removes them later
            logger.exception("could not stop the containers of submission %s", pk)

    transaction.on_commit(stop)
