from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api
from .notifications.api import NotificationViewSet
from .organizers.api_urls import import_urlpatterns

router = DefaultRouter()
router.register("challenges", api.ChallengeViewSet, basename="challenge")
router.register("phases", api.PhaseViewSet, basename="phase")
router.register("submissions", api.SubmissionViewSet, basename="submission")
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = [
    path("auth/", include("spinebench.accounts.api_urls")),
    path("organizers/", include("spinebench.organizers.api_urls")),
    *import_urlpatterns,
    path("", include(router.urls)),
]
