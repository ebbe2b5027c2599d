from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api
from .notifications.api import NotificationViewSet
from .organizers.evaluation_api import MonitoredSubmissionViewSet, PhaseRevealView, RescoreJobViewSet

router = DefaultRouter()
router.register("challenges", api.ChallengeViewSet, basename="challenge")
router.register("phases", api.PhaseViewSet, basename="phase")
router.register("submissions", api.SubmissionViewSet, basename="submission")
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("rescore-jobs", RescoreJobViewSet, basename="rescore-job")
router.register("monitor/submissions", MonitoredSubmissionViewSet, basename="monitored-submission")

urlpatterns = [
    path("auth/", include("spinebench.accounts.api_urls")),
    path("phases/<int:pk>/reveal/", PhaseRevealView.as_view(), name="phase-reveal"),
    path("", include(router.urls)),
]
