from django.urls import path

from . import views

app_name = "challenges"
urlpatterns = [
    path("", views.challenge_list, name="home"),
    path("challenges/", views.challenge_list, name="list"),
    path("challenges/<slug:slug>/", views.challenge_detail, name="detail"),
    path("challenges/<slug:slug>/logo.png", views.challenge_logo, name="logo"),
    path("challenges/<slug:slug>/terms/", views.challenge_terms, name="terms"),
    path("challenges/<slug:slug>/announcements/", views.challenge_announcements, name="announcements"),
    path("challenges/<slug:slug>/register/", views.challenge_register, name="register"),
    path(
        "challenges/<slug:slug>/registrations/<int:pk>/<str:decision>/",
        views.registration_decide,
        name="registration-decide",
    ),
]
