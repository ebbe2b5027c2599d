from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api
from .leaderboards.dashboard_api import MySubmissionViewSet
from .notifications.api import NotificationViewSet
from .organizers.api_urls import import_urlpatterns
from .organizers.evaluation_api import MonitoredSubmissionViewSet, PhaseRevealView, RescoreJobViewSet
from .organizers.evaluation_image_api import EvaluationImagesView, MetricDeclarationView
from .teams.api import InvitationViewSet, TeamCapViewSet, TeamViewSet
from .uploads.api import UploadSessionViewSet

router = DefaultRouter()
router.register("challenges", api.ChallengeViewSet, basename="challenge")
router.register("phases", api.PhaseViewSet, basename="phase")
router.register("submissions", api.SubmissionViewSet, basename="submission")
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("uploads", UploadSessionViewSet, basename="upload-session")
router.register("teams", TeamViewSet, basename="team")
router.register("team-invitations", InvitationViewSet, basename="team-invitation")
router.register("team-caps", TeamCapViewSet, basename="team-cap")
router.register("my-submissions", MySubmissionViewSet, basename="my-submission")
router.register("rescore-jobs", RescoreJobViewSet, basename="rescore-job")
router.register("monitor/submissions", MonitoredSubmissionViewSet, basename="monitored-submission")

urlpatterns = [
    path("auth/", include("spinebench.accounts.api_urls")),
    path("phases/<int:pk>/reveal/", PhaseRevealView.as_view(), name="phase-reveal"),
    path("phases/<int:pk>/metric-declaration/", MetricDeclarationView.as_view(), name="phase-metric-declaration"),
    path("phases/<int:pk>/evaluation-images/", EvaluationImagesView.as_view(), name="phase-evaluation-images"),
    path("organizers/", include("spinebench.organizers.api_urls")),
    path("worker/", include("spinebench.algorithms.worker_api_urls")),
    *import_urlpatterns,
    path("", include(router.urls)),
]
