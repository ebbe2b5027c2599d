"""The worker-token API (`/api/worker/...`): what a remote container worker host asks of the site instead of reading
the database or the disk (docs/workers.md). Only worker tokens reach it (accounts.permissions.IsWorkerToken; they
authenticate nowhere else), and a participant's token never gets a job, a signed URL or a file from it.

Each call answers with JSON; a call from a worker that no longer holds the run answers 409 with `"code":
"lease_lost"` and changes nothing. The calls follow the job client's protocol (job_worker.JobClient), served by the
same job service (jobs.py) a local worker calls directly."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from spinebench.accounts.permissions import IsWorkerToken
from spinebench.submissions.models import Submission
from spinebench.submissions.uploads import zip_limits
from spinebench.uploads.zips import ZipRefused, extract_zip
from spinebench.workers import services as worker_services

from . import evaluation_jobs, jobs
from .job_worker import LeaseLost
from .signed_files import DATASET, FileRefused, dataset_path, signed_refs, unsign

WORKER_ID_MAX = 200


def worker_id(request) -> str:
    """The lease holder's name for a remote worker: its token and the worker process it says it is (a token cannot
    act for a worker of another token)."""
    said = str(request.data.get("worker") or "").strip()
    if not said or len(said) > WORKER_ID_MAX:
        raise ValidationError({"worker": f"name the worker process (1 to {WORKER_ID_MAX} characters)"})
    return f"remote:{request.auth.pk}:{said}"


class WorkerView(APIView):
    permission_classes = [IsWorkerToken]
    throttle_classes: list = []  # site-issued tokens of the site's own hosts, beating every few seconds
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def handle_exception(self, exc):
        if isinstance(exc, LeaseLost):
            return Response({"detail": str(exc), "code": "lease_lost"}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, jobs.JobRefused):
            return Response({"detail": str(exc), "code": "refused"}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


def _submission(pk: int) -> None:
    if not Submission.objects.filter(pk=pk, phase__submission_kind="algorithm").exists():
        raise NotFound("no algorithm submission with this id")


@extend_schema(exclude=True)
class HeartbeatView(WorkerView):
    """A remote worker's heartbeat (and its clean shutdown with `"stopped": true`); answers what the worker needs to
    know of the site: its instance id (the scope label of its containers) and the lease length."""

    def post(self, request):
        hostname = str(request.data.get("hostname") or "").strip()
        if not hostname or len(hostname) > WORKER_ID_MAX:
            raise ValidationError({"hostname": f"1 to {WORKER_ID_MAX} characters"})
        name = f"{request.auth.name}/{hostname}"[:255]
        if request.data.get("stopped"):
            worker_services.record_shutdown(hostname=name)
        else:
            queues = request.data.get("queues") or []
            if not isinstance(queues, list):
                raise ValidationError({"queues": "a list of queue names"})
            started = request.data.get("started")
            try:
                started_at = datetime.fromisoformat(started) if started else None
            except (TypeError, ValueError):
                raise ValidationError({"started": "an ISO 8601 time"}) from None
            worker_services.record_heartbeat(hostname=name, queues=[str(queue) for queue in queues],
                                             pid=int(request.data.get("pid") or 0),
                                             version=str(request.data.get("version") or "")[:64], started=started_at)
        return Response({"hostname": name, "instance": settings.SPINEBENCH_INSTANCE_ID,
                         "lease_seconds": settings.SPINEBENCH_CONTAINER_LEASE_SECONDS})


@extend_schema(exclude=True)
class ClaimView(WorkerView):
    def post(self, request, submission_pk: int):
        _submission(submission_pk)
        refs = signed_refs(token_pk=request.auth.pk, base_url=request.build_absolute_uri("/"))
        answer = jobs.claim(submission_pk, worker=worker_id(request), refs=refs)
        answer["scope"] = settings.SPINEBENCH_INSTANCE_ID
        return Response(answer)


@extend_schema(exclude=True)
class LeaseView(WorkerView):
    def post(self, request, submission_pk: int):
        _submission(submission_pk)
        return Response({"stop": jobs.renew_lease(submission_pk, worker=worker_id(request))})


@extend_schema(exclude=True)
class StartJobView(WorkerView):
    def post(self, request, submission_pk: int, job_pk: int):
        _submission(submission_pk)
        jobs.start_job(submission_pk, job_pk, worker=worker_id(request))
        return Response({"started": job_pk})


@extend_schema(exclude=True)
class ReportJobView(WorkerView):
    """One container run's report (`report`: JSON) and, for a succeeded run, its output files as one zip (`outputs`)
    with its SHA-256 (`outputs_sha256`): refused when the bytes do not match, when the zip breaks the phase's output
    limits, or when it holds a file the task does not accept."""

    def post(self, request, submission_pk: int, job_pk: int):
        _submission(submission_pk)
        worker = worker_id(request)
        try:
            report = jobs.JobReport.from_payload(json.loads(request.data.get("report") or "{}"))
        except json.JSONDecodeError:
            raise ValidationError({"report": "a JSON object"}) from None
        upload = request.FILES.get("outputs")
        if report.succeeded and upload is None:
            raise ValidationError({"outputs": "a succeeded run sends its output files"})
        with tempfile.TemporaryDirectory(prefix="spinebench-worker-outputs-") as scratch:
            outputs = None
            if upload is not None:
                outputs = self._unpack(upload, expected=str(request.data.get("outputs_sha256") or ""),
                                       submission_pk=submission_pk, into=Path(scratch) / "files")
            outcome = jobs.record_job(submission_pk, job_pk, worker=worker, report=report, outputs=outputs)
        return Response({"outcome": outcome})

    @staticmethod
    def _unpack(upload, *, expected: str, submission_pk: int, into: Path) -> Path:
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        if digest.hexdigest() != expected.lower():
            raise ValidationError({"outputs_sha256": "the outputs do not match their SHA-256 (damaged on the way); "
                                   "send them again"})
        submission = Submission.objects.select_related("phase").get(pk=submission_pk)
        from spinebench.challenges import registry

        allowed = set(registry.phase_task(submission.phase).output_files)
        into.mkdir(parents=True)
        upload.seek(0)
        try:
            extract_zip(upload, into, name="outputs.zip", limits=zip_limits(submission.phase))
        except ZipRefused as error:
            raise ValidationError({"outputs": str(error)}) from None
        for path in into.rglob("*"):
            if path.is_file() and path.name not in allowed:
                shutil.rmtree(into, ignore_errors=True)
                raise ValidationError({"outputs": f"{path.relative_to(into).as_posix()}: not an output this task "
                                       f"accepts ({', '.join(sorted(allowed))})"})
        return into


@extend_schema(exclude=True)
class FinishView(WorkerView):
    def post(self, request, submission_pk: int):
        _submission(submission_pk)
        return Response({"outcome": jobs.finish(submission_pk, worker=worker_id(request), score_now=False)})


@extend_schema(exclude=True)
class FailView(WorkerView):
    def post(self, request, submission_pk: int):
        _submission(submission_pk)
        reason = str(request.data.get("reason") or "").strip()
        if not reason:
            raise ValidationError({"reason": "say why the run failed"})
        return Response({"outcome": jobs.fail(submission_pk, worker=worker_id(request), reason=reason)})


@extend_schema(exclude=True)
class EngineFaultView(WorkerView):
    def post(self, request, submission_pk: int):
        _submission(submission_pk)
        return Response({"outcome": jobs.engine_fault(submission_pk, worker=worker_id(request))})


@extend_schema(exclude=True)
class NoEngineView(WorkerView):
    def post(self, request, submission_pk: int):
        _submission(submission_pk)
        return Response({"outcome": jobs.no_engine(submission_pk, worker=worker_id(request))})


@extend_schema(exclude=True)
class RecoverView(WorkerView):
    def post(self, request):
        answer = jobs.recover_leases()
        answer["scope"] = settings.SPINEBENCH_INSTANCE_ID
        return Response(answer)


def _custom_submission(pk: int) -> None:
    from evaluators.contract import CUSTOM_TASK

    if not Submission.objects.filter(pk=pk, phase__task=CUSTOM_TASK).exclude(
            phase__submission_kind="algorithm").exists():
        raise NotFound("no submission of a custom phase scored by a container worker has this id")


@extend_schema(exclude=True)
class EvaluationClaimView(WorkerView):
    """A custom phase's submission to score with its evaluation image: the staged parts as signed URLs."""

    def post(self, request, submission_pk: int):
        _custom_submission(submission_pk)
        refs = signed_refs(token_pk=request.auth.pk, base_url=request.build_absolute_uri("/"))
        return Response(evaluation_jobs.claim(submission_pk, token_pk=request.auth.pk, refs=refs))


@extend_schema(exclude=True)
class EvaluationResultView(WorkerView):
    """Each part's metrics.json (or the reason the image produced none), with the claim's ticket."""

    def post(self, request, submission_pk: int):
        _custom_submission(submission_pk)
        results = evaluation_jobs.results_from_payload(request.data.get("results"))
        outcome = evaluation_jobs.record_results(submission_pk, token_pk=request.auth.pk,
                                                 ticket=str(request.data.get("ticket") or ""), results=results)
        return Response({"outcome": outcome})


@extend_schema(exclude=True)
class FileView(WorkerView):
    """A file named by a signed, expiring URL issued to this same worker token."""

    def get(self, request, signed: str):
        try:
            named = unsign(signed, token_pk=request.auth.pk)
            if named.kind == DATASET:
                return FileResponse(dataset_path(named.name).open("rb"), as_attachment=True)
            if not default_storage.exists(named.name):
                raise FileRefused("this file is not available")
            return FileResponse(default_storage.open(named.name, "rb"), as_attachment=True)
        except FileRefused as refusal:
            return Response({"detail": str(refusal)}, status=status.HTTP_403_FORBIDDEN)
