"""Token routes of the REST API, included under /api/auth/ by spinebench.api_urls."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("tokens", views.TokenViewSet, basename="api-token-item")

urlpatterns = [
    path("token/", views.TokenCreateView.as_view(), name="api-token"),
    *router.urls,
]
