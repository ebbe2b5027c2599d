"""The project's URLconf plus one view nobody wrote rows for: test_permission_matrix proves the meta-test names it."""

from django.http import HttpResponse
from django.urls import path

from spinebench.urls import urlpatterns as project_urlpatterns


def unlisted(request):
    return HttpResponse("new")


urlpatterns = [*project_urlpatterns, path("brand-new/<int:pk>/", unlisted, name="brand-new")]
