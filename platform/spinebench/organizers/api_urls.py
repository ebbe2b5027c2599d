"""The console's API routes, mounted at /api/organizers/."""

from rest_framework.routers import SimpleRouter

from .api import ManagedChallengeViewSet, ManagedPhaseViewSet

router = SimpleRouter()
router.register("challenges", ManagedChallengeViewSet, basename="organizer-challenge")
router.register("phases", ManagedPhaseViewSet, basename="organizer-phase")

urlpatterns = router.urls
