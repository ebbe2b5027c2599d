"""Account pages under /accounts/: sign-up here, login/logout/password pages from django.contrib.auth (the URL names
`signup`, `login`, `logout`, ... stay global)."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("", include("django.contrib.auth.urls")),
]
