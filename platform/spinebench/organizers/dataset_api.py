"""REST API of a challenge's datasets, for its organizers (everyone else gets 404), under /api/organizers/:

- `GET /dataset-uploads/?challenge=SLUG` your challenges' dataset uploads: status, progress, error, report;
- `POST /dataset-uploads/` {challenge, slug, title, layout, task, split} and the zip as `upload` (the id of a
  finished chunked upload session of kind `dataset`, /api/uploads/) or as the multipart file `archive` -> 202, the
  job; poll `GET /dataset-uploads/{id}/` until `ready` (read `report`) or `failed` (read `error`);
- `POST /dataset-uploads/{id}/attach/` {phase, role: test|training} attaches a ready upload to a phase;
- `DELETE /dataset-uploads/{id}/` discards an upload never attached (its folder and zip);
- `GET /phases/{id}/datasets/` a phase's datasets; `PATCH` {dataset, training_dataset}: ids of the challenge's
  datasets, or null to detach (a key left out is kept).

The services are the console's (organizers.dataset_uploads); refusals are 400 keyed by the field at fault."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from spinebench.access import can_manage_challenge, managed_challenges
from spinebench.challenges.models import Phase
from spinebench.datasets.models import Dataset
from spinebench.uploads.handlers import refusal_of
from spinebench.uploads.limits import UploadRefused

from . import dataset_uploads
from .models import DatasetUpload


class DatasetUploadSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    dataset = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True,
                                                 help_text="The Dataset, once attached (null before).")
    report = serializers.JSONField(read_only=True, help_text="What the check found: task, split, cases, groups, "
                                   "labelled_cases, missing_labels(_count), files, bytes, largest_files.")

    class Meta:
        model = DatasetUpload
        fields = ["id", "challenge", "slug", "title", "layout", "task", "split", "original_name", "status", "stage",
                  "progress", "error", "report", "dataset", "created", "finished"]


class DatasetUploadCreateSerializer(serializers.Serializer):
    challenge = serializers.SlugField(help_text="Slug of a challenge you organize.")
    slug = serializers.SlugField(max_length=50, help_text="The dataset's name in the challenge (new).")
    title = serializers.CharField(max_length=200, required=False, default="")
    layout = serializers.CharField(
        max_length=32, default="spinebench",
        help_text="`spinebench` (dataset.json, inputs/, ground_truth/) or a public layout: dicom-series, image, "
        "spineweb16, verse.")
    task = serializers.CharField(max_length=64, required=False, default="",
                                 help_text="Task id; required for a public layout.")
    split = serializers.CharField(max_length=8, required=False, default="",
                                  help_text="train or test; required for a public layout.")
    upload = serializers.UUIDField(required=False, allow_null=True,
                                   help_text="Id of your finished upload session of kind `dataset`.")
    archive = serializers.FileField(required=False, allow_null=True, help_text="The zip, when not sent as `upload`.")


class AttachSerializer(serializers.Serializer):
    phase = serializers.IntegerField(help_text="Id of a phase of the upload's challenge.")
    role = serializers.CharField(max_length=16, help_text="`test` (scored against) or `training` (downloadable).")


class DatasetSummarySerializer(serializers.ModelSerializer):
    cases = serializers.IntegerField(source="cases.count", read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "slug", "title", "task", "split", "cases"]


class PhaseDatasetsSerializer(serializers.Serializer):
    dataset = DatasetSummarySerializer(allow_null=True, help_text="What submissions are scored against.")
    training_dataset = DatasetSummarySerializer(allow_null=True, help_text="What participants may download.")


class PhaseDatasetsUpdateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(required=False, allow_null=True, help_text="A dataset id, or null.")
    training_dataset = serializers.IntegerField(required=False, allow_null=True, help_text="A dataset id, or null.")


def _refused(error: ValidationError) -> Response:
    detail = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
    return Response(detail, status=400)


class DatasetUploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Dataset zips uploaded to challenges you organize, checked in the background before you attach them."""

    serializer_class = DatasetUploadSerializer
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    queryset = DatasetUpload.objects.none()  # for the schema; get_queryset() keeps the caller's challenges

    def get_queryset(self):
        jobs = DatasetUpload.objects.select_related("challenge").filter(
            challenge__in=managed_challenges(self.request.user))
        challenge = self.request.query_params.get("challenge")
        return jobs.filter(challenge__slug=challenge) if challenge else jobs

    @extend_schema(parameters=[OpenApiParameter("challenge", str, description="Only this challenge's uploads.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request={"application/json": DatasetUploadCreateSerializer,
                            "multipart/form-data": DatasetUploadCreateSerializer},
                   responses={202: DatasetUploadSerializer})
    def create(self, request, format=None):
        """Store the zip and queue its check (202 with the job); 400 keyed by the field at fault."""
        refusal = refusal_of(request)
        if refusal is not None:
            return Response(refusal.as_dict(), status=refusal.status)
        payload = DatasetUploadCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        challenge = managed_challenges(request.user).filter(slug=values["challenge"]).first()
        if challenge is None:  # unknown or not yours: the same answer, so it never tells who organizes what
            return Response({"challenge": ["No challenge you organize has this slug."]}, status=400)
        try:
            job = dataset_uploads.start_dataset_upload(
                challenge=challenge, actor=request.user, slug=values["slug"], title=values["title"],
                layout=values["layout"], task=values["task"], split=values["split"], upload=values.get("archive"),
                session_id=values.get("upload"),
            )
        except ValidationError as error:
            return _refused(error)
        except UploadRefused as refused:
            return Response(refused.as_dict(), status=refused.status)
        job.refresh_from_db()
        return Response(DatasetUploadSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, pk=None, format=None):
        """Discard an upload never attached: its checked folder and stored zip go; 400 once it is a dataset."""
        try:
            dataset_uploads.discard_upload(job=self.get_object(), actor=request.user)
        except ValidationError as error:
            return _refused(error)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=AttachSerializer, responses={200: DatasetUploadSerializer})
    @action(detail=True, methods=["post"])
    def attach(self, request, pk=None, format=None):
        """Attach a ready upload to a phase of its challenge as the `test` (scored) or `training` dataset. A phase
        with scored submissions keeps the dataset they were scored against (400, field `dataset`)."""
        job = self.get_object()
        payload = AttachSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        phase = Phase.objects.filter(pk=payload.validated_data["phase"], challenge=job.challenge).first()
        if phase is None:
            return Response({"phase": ["No phase of this challenge has this id."]}, status=400)
        try:
            dataset_uploads.attach_upload(job=job, actor=request.user, phase=phase,
                                          role=payload.validated_data["role"])
        except ValidationError as error:
            return _refused(error)
        job.refresh_from_db()
        return Response(DatasetUploadSerializer(job).data)


class PhaseDatasetsView(APIView):
    """The datasets of a phase of a challenge you organize: read them, attach others of the challenge, detach."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @staticmethod
    def _phase(request, pk) -> Phase:
        phase = get_object_or_404(Phase.objects.select_related("challenge"), pk=pk)
        if not can_manage_challenge(phase.challenge, request.user):
            raise Http404
        return phase

    @staticmethod
    def _payload(phase: Phase) -> dict:
        return PhaseDatasetsSerializer({"dataset": phase.dataset, "training_dataset": phase.training_dataset}).data

    @extend_schema(responses=PhaseDatasetsSerializer)
    def get(self, request, pk, format=None):
        return Response(self._payload(self._phase(request, pk)))

    @extend_schema(request=PhaseDatasetsUpdateSerializer, responses=PhaseDatasetsSerializer)
    def patch(self, request, pk, format=None):
        phase = self._phase(request, pk)
        payload = PhaseDatasetsUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        changes: dict[str, Dataset | None] = {}
        for field, dataset_pk in payload.validated_data.items():
            if dataset_pk is None:
                changes[field] = None
                continue
            dataset = phase.challenge.datasets.filter(pk=dataset_pk).first()
            if dataset is None:
                return Response({field: ["No dataset of this challenge has this id."]}, status=400)
            changes[field] = dataset
        if not changes:
            return Response({"non_field_errors": ["Name dataset and/or training_dataset."]}, status=400)
        try:
            dataset_uploads.set_phase_datasets(phase=phase, actor=request.user, changes=changes)
        except ValidationError as error:
            return _refused(error)
        phase.refresh_from_db()
        return Response(self._payload(Phase.objects.get(pk=phase.pk)))
