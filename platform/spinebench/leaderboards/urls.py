from django.urls import path

from . import history_views, views

app_name = "leaderboards"
urlpatterns = [
    path("challenges/<slug:challenge>/phases/<slug:phase>/", views.phase_leaderboard, name="phase"),
    path("challenges/<slug:challenge>/phases/<slug:phase>/inputs.zip", views.phase_inputs, name="inputs"),
    path("challenges/<slug:challenge>/phases/<slug:phase>/roc.png", views.phase_roc, name="roc"),
    path("challenges/<slug:challenge>/phases/<slug:phase>/leaderboard.csv", views.export_csv, name="export-csv"),
    path("challenges/<slug:challenge>/phases/<slug:phase>/leaderboard.json", views.export_json, name="export-json"),
    path("challenges/<slug:challenge>/phases/<slug:phase>/history/", history_views.phase_history_page, name="history"),
]
