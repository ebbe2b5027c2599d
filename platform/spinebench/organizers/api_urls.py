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
from .dataset_api import DatasetUploadViewSet, PhaseDatasetsView

router = SimpleRouter()
router.register("challenges", ManagedChallengeViewSet, basename="organizer-challenge")
router.register("phases", ManagedPhaseViewSet, basename="organizer-phase")
router.register("questions", ManagedQuestionViewSet, basename="organizer-question")
router.register("announcements", ManagedAnnouncementViewSet, basename="organizer-announcement")
router.register("imports", BundleImportStatusViewSet, basename="organizer-import")
router.register("dataset-uploads", DatasetUploadViewSet, basename="organizer-dataset-upload")

urlpatterns = [
    path("phases/<int:pk>/datasets/", PhaseDatasetsView.as_view(), name="organizer-phase-datasets"),
    *router.urls,
]
#: `POST /api/challenges/import/` (mounted by spinebench.api_urls, before the challenges router).
import_urlpatterns = [
    path("challenges/import/", BundleImportViewSet.as_view({"post": "create"}), name="challenge-import"),
]
