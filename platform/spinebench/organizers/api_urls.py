"""The console's API routes, mounted at /api/organizers/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import (
    BundleImportStatusViewSet,
    BundleImportViewSet,
    ManagedAnnouncementViewSet,
    ManagedChallengeViewSet,
    ManagedPhaseViewSet,
    ManagedQuestionViewSet,
)

router = SimpleRouter()
router.register("challenges", ManagedChallengeViewSet, basename="organizer-challenge")
router.register("phases", ManagedPhaseViewSet, basename="organizer-phase")
router.register("questions", ManagedQuestionViewSet, basename="organizer-question")
router.register("announcements", ManagedAnnouncementViewSet, basename="organizer-announcement")
router.register("imports", BundleImportStatusViewSet, basename="organizer-import")

urlpatterns = router.urls
#: `POST /api/challenges/import/` (mounted by spinebench.api_urls, before the challenges router).
import_urlpatterns = [
    path("challenges/import/", BundleImportViewSet.as_view({"post": "create"}), name="challenge-import"),
]
