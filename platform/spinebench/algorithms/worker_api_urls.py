"""Routes of the worker-token API (worker_api.py), under /api/worker/."""

from django.urls import path

from . import worker_api

urlpatterns = [
    path("heartbeat/", worker_api.HeartbeatView.as_view(), name="worker-heartbeat"),
    path("recover/", worker_api.RecoverView.as_view(), name="worker-recover"),
    path("runs/<int:submission_pk>/claim/", worker_api.ClaimView.as_view(), name="worker-claim"),
    path("runs/<int:submission_pk>/lease/", worker_api.LeaseView.as_view(), name="worker-lease"),
    path("runs/<int:submission_pk>/jobs/<int:job_pk>/start/", worker_api.StartJobView.as_view(),
         name="worker-job-start"),
    path("runs/<int:submission_pk>/jobs/<int:job_pk>/report/", worker_api.ReportJobView.as_view(),
         name="worker-job-report"),
    path("runs/<int:submission_pk>/finish/", worker_api.FinishView.as_view(), name="worker-finish"),
    path("runs/<int:submission_pk>/fail/", worker_api.FailView.as_view(), name="worker-fail"),
    path("runs/<int:submission_pk>/engine-fault/", worker_api.EngineFaultView.as_view(), name="worker-engine-fault"),
    path("runs/<int:submission_pk>/no-engine/", worker_api.NoEngineView.as_view(), name="worker-no-engine"),
    path("evaluations/<int:submission_pk>/claim/", worker_api.EvaluationClaimView.as_view(),
         name="worker-evaluation-claim"),
    path("evaluations/<int:submission_pk>/result/", worker_api.EvaluationResultView.as_view(),
         name="worker-evaluation-result"),
    path("files/<str:signed>/", worker_api.FileView.as_view(), name="worker-file"),
]
