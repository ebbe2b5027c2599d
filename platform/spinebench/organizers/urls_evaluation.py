"""Organizers' pages for scoring: the submission monitor and its actions, and re-scoring a phase."""

from django.urls import path

from . import monitor_views, rescore_views

app_name = "organizer_evaluation"

urlpatterns = [
    path("<slug:challenge>/submissions/", monitor_views.monitor, name="monitor"),
    path("<slug:challenge>/submissions/<int:pk>/", monitor_views.monitor_submission, name="submission"),
    path("<slug:challenge>/submissions/<int:pk>/hide/", monitor_views.submission_hide, name="hide"),
    path("<slug:challenge>/submissions/<int:pk>/restore/", monitor_views.submission_restore, name="restore"),
    path("<slug:challenge>/submissions/<int:pk>/rerun/", monitor_views.submission_rerun, name="rerun"),
    path("<slug:challenge>/phases/<slug:phase>/rescore/", rescore_views.phase_rescore, name="rescore"),
    path("<slug:challenge>/phases/<slug:phase>/reveal/", rescore_views.phase_reveal, name="reveal"),
    path("rescore-jobs/<int:pk>/", rescore_views.rescore_progress, name="rescore-progress"),
]
