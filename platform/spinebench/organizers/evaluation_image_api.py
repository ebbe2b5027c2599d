"""REST API of a phase's evaluation, for the challenge's organizers (everyone else gets 404):

- `GET /api/phases/{id}/metric-declaration/` the declaration; `PUT` replaces it (all or nothing);
- `GET /api/phases/{id}/evaluation-images/` the uploaded images and the latest runs (errors and log tails);
  `POST` (multipart, field `archive`) uploads a `docker save` archive and makes it the phase's evaluation.

The services are the page's (evaluation.declarations, algorithms.evaluation_images); refusals are 400 with the
field at fault."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiRequest, extend_schema
from rest_framework import permissions, serializers
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from spinebench.access import can_manage_phase_evaluation
from spinebench.algorithms.evaluation_images import upload_evaluation_image
from spinebench.challenges.models import Phase
from spinebench.evaluation.declarations import declare_metrics
from spinebench.evaluation.images import CustomEvaluation, DeclaredMetric, EvaluationImage, EvaluationImageRun
from spinebench.uploads.handlers import refusal_of


class DeclaredMetricSerializer(serializers.ModelSerializer):
    key = serializers.CharField(max_length=64, help_text="The key in metrics.json, e.g. mae (checked by the service, "
                                "whose refusal names the key).")

    class Meta:
        model = DeclaredMetric
        fields = ["key", "label", "direction", "primary", "scope"]


class DeclarationSerializer(serializers.Serializer):
    task = serializers.CharField(read_only=True, help_text="`custom` once the phase has its own evaluation image.")
    metrics = DeclaredMetricSerializer(many=True, help_text="Exactly one metric is primary.")
    predictions_format = serializers.ChoiceField(choices=CustomEvaluation.PredictionsFormat.choices,
                                                 default=CustomEvaluation.PredictionsFormat.CSV)
    output_files = serializers.ListField(child=serializers.CharField(max_length=128), default=list,
                                         help_text="Files an algorithm of the phase writes to /output.")


class EvaluationImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvaluationImage
        fields = ["id", "image_id", "archive_sha256", "size_bytes", "user", "uid", "gid", "validation", "created"]


class EvaluationImageRunSerializer(serializers.ModelSerializer):
    image_id = serializers.CharField(source="image.image_id")

    class Meta:
        model = EvaluationImageRun
        fields = ["id", "submission", "image_id", "succeeded", "organizer_error", "log_tail", "duration_seconds",
                  "created"]


class EvaluationImagesSerializer(serializers.Serializer):
    current = serializers.CharField(allow_null=True, help_text="Image id of the image scoring new submissions.")
    images = EvaluationImageSerializer(many=True)
    runs = EvaluationImageRunSerializer(many=True, help_text="The latest 50 runs, newest first.")


class ImageUploadSerializer(serializers.Serializer):
    archive = serializers.FileField(help_text="`docker save` archive (.tar, .tar.gz, .tar.bz2, .tar.xz).")


IMAGE_UPLOAD_REQUEST = OpenApiRequest(
    ImageUploadSerializer,
    encoding={"archive": {"headers": {"Content-Disposition": {
        "schema": {"type": "string"}, "example": 'form-data; name="archive"; filename="evaluation.tar"',
        "description": "A file part: `*.tar`, `*.tar.gz`, `*.tar.bz2` or `*.tar.xz`.",
    }}}},
)


def _managed_phase(request, pk) -> Phase:
    phase = get_object_or_404(Phase.objects.select_related("challenge"), pk=pk)
    if not can_manage_phase_evaluation(phase, request.user):
        raise Http404
    return phase


def _refused(error: ValidationError) -> Response:
    return Response(error.message_dict, status=400)


class MetricDeclarationView(APIView):
    """The metric declaration of a phase scored by its own evaluation image."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @staticmethod
    def _payload(phase: Phase) -> dict:
        custom = CustomEvaluation.objects.filter(phase=phase).first()
        return {
            "task": phase.task,
            "metrics": DeclaredMetricSerializer(DeclaredMetric.objects.filter(phase=phase), many=True).data,
            "predictions_format": custom.predictions_format if custom else CustomEvaluation.PredictionsFormat.CSV,
            "output_files": custom.output_files if custom else [],
        }

    @extend_schema(responses=DeclarationSerializer)
    def get(self, request, pk, format=None):
        return Response(self._payload(_managed_phase(request, pk)))

    @extend_schema(request=DeclarationSerializer, responses=DeclarationSerializer)
    def put(self, request, pk, format=None):
        phase = _managed_phase(request, pk)
        payload = DeclarationSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            declare_metrics(phase=phase, actor=request.user, metrics=[dict(item) for item in data["metrics"]],
                            predictions_format=data["predictions_format"], output_files=data["output_files"])
        except ValidationError as error:
            return _refused(error)
        phase.refresh_from_db()
        return Response(self._payload(phase))


class EvaluationImagesView(APIView):
    """A phase's evaluation images: list them with the latest runs, or upload one."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @staticmethod
    def _payload(phase: Phase) -> dict:
        custom = CustomEvaluation.objects.select_related("image").filter(phase=phase).first()
        runs = EvaluationImageRun.objects.filter(image__phase=phase).select_related("image")[:50]
        return {
            "current": custom.image.image_id if custom and custom.image else None,
            "images": EvaluationImageSerializer(EvaluationImage.objects.filter(phase=phase), many=True).data,
            "runs": EvaluationImageRunSerializer(runs, many=True).data,
        }

    @extend_schema(responses=EvaluationImagesSerializer)
    def get(self, request, pk, format=None):
        return Response(self._payload(_managed_phase(request, pk)))

    @extend_schema(request={"multipart/form-data": IMAGE_UPLOAD_REQUEST}, responses={201: EvaluationImagesSerializer})
    def post(self, request, pk, format=None):
        phase = _managed_phase(request, pk)
        data = request.data
        too_large = refusal_of(request)
        if too_large is not None:
            return Response(too_large.as_dict(), status=too_large.status)
        payload = ImageUploadSerializer(data=data)
        payload.is_valid(raise_exception=True)
        try:
            upload_evaluation_image(phase=phase, actor=request.user, upload=payload.validated_data["archive"])
        except ValidationError as error:
            return _refused(error)
        return Response(self._payload(phase), status=201)
