from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api
from .notifications.api import NotificationViewSet
from .organizers.evaluation_image_api import EvaluationImagesView, MetricDeclarationView

router = DefaultRouter()
router.register("challenges", api.ChallengeViewSet, basename="challenge")
router.register("phases", api.PhaseViewSet, basename="phase")
router.register("submissions", api.SubmissionViewSet, basename="submission")
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = [
    path("auth/", include("spinebench.accounts.api_urls")),
    path("phases/<int:pk>/metric-declaration/", MetricDeclarationView.as_view(), name="phase-metric-declaration"),
    path("phases/<int:pk>/evaluation-images/", EvaluationImagesView.as_view(), name="phase-evaluation-images"),
    path("", include(router.urls)),
]
