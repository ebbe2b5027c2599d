from django.urls import path

from . import views

app_name = "teams"
urlpatterns = [
    path("challenges/<slug:slug>/teams/", views.challenge_teams, name="list"),
    path("challenges/<slug:slug>/teams/create/", views.team_create, name="create"),
    path("challenges/<slug:slug>/teams/cap/", views.team_cap, name="cap"),
    path("teams/<int:pk>/", views.team_detail, name="detail"),
    path("teams/<int:pk>/invite/", views.team_invite, name="invite"),
    path("teams/<int:pk>/leave/", views.team_leave, name="leave"),
    path("teams/<int:pk>/transfer/", views.team_transfer, name="transfer"),
    path("teams/invitations/<int:pk>/<str:answer>/", views.invitation_answer, name="invitation-answer"),
]
