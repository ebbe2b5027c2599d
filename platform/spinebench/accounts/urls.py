"""Account pages under /accounts/: sign-up, email verification and change, profile, API tokens; login/logout and
password reset are django.contrib.auth's views (the URL names `signup`, `login`, `logout`, ... stay global)."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("verify/<str:token>/", views.verify_email, name="verify-email"),
    path("verify-again/", views.resend_verification, name="resend-verification"),
    path("email/confirm/<str:token>/", views.confirm_email_change, name="confirm-email-change"),
    path("profile/", views.profile, name="profile"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("", include("django.contrib.auth.urls")),
]
