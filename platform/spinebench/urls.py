"""URL map: public pages, accounts, the REST API (+ OpenAPI schema and docs) and the admin."""

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from spinebench.api_docs import ApiDocsView

urlpatterns = [
    path("", include("spinebench.challenges.urls")),
    path("", include("spinebench.leaderboards.urls")),
    path("submissions/", include("spinebench.submissions.urls")),
    path("datasets/", include("spinebench.datasets.urls")),
    path("accounts/", include("spinebench.accounts.urls")),
    path("notifications/", include("spinebench.notifications.urls")),
    path("api/", include("spinebench.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
if find_spec("spinebench.algorithms.urls") is not None:
    urlpatterns.append(path("algorithms/", include("spinebench.algorithms.urls")))
