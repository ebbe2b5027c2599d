"""URL map: public pages, accounts, the REST API (+ OpenAPI schema and docs) and the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from spinebench.api_docs import ApiDocsView

handler404 = "spinebench.errors.page_not_found"  # JSON under /api/

urlpatterns = [
    path("", include("spinebench.challenges.urls")),
    path("", include("spinebench.leaderboards.urls")),
    path("", include("spinebench.teams.urls")),
    path("submissions/", include("spinebench.submissions.urls")),
    path("datasets/", include("spinebench.datasets.urls")),
    path("accounts/", include("spinebench.accounts.urls")),
    path("notifications/", include("spinebench.notifications.urls")),
    path("dashboard/", include("spinebench.leaderboards.dashboard_urls")),
    path("api/", include("spinebench.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("algorithms/", include("spinebench.algorithms.urls")),
    path("organizers/", include("spinebench.organizers.urls_evaluation")),
    path("admin/", admin.site.urls),
    path("organize/", include("spinebench.organizers.urls_images")),
    path("", include("spinebench.organizers.urls")),
]
