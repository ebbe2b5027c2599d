"""The console API's representations. Writes go through the organizers' services, which validate; these
serializers check shapes and name the fields for the OpenAPI schema."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from spinebench.challenges.models import (
    Challenge,
    ChallengeTerms,
    Phase,
    Registration,
    RegistrationQuestion,
)
from spinebench.challenges.serializers import AnnouncementSerializer
from spinebench.submissions.parts import phase_parts

from .models import AuditEvent, BundleImport
from .phases import PHASE_FIELDS
from .questions import QUESTION_FIELDS
from .services import CHALLENGE_FIELDS


class ManagedChallengeSerializer(serializers.ModelSerializer):
    organizers = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    logo = serializers.FileField(
        write_only=True, required=False, help_text="PNG, JPEG, GIF or WebP; stored re-encoded as PNG, metadata removed."
    )
    remove_logo = serializers.BooleanField(write_only=True, required=False, default=False)
    logo_url = serializers.SerializerMethodField()

    class Meta:
        model = Challenge
        fields = [*CHALLENGE_FIELDS, "organizers", "logo", "remove_logo", "logo_url", "created"]
        extra_kwargs: dict[str, dict] = {"slug": {"validators": []}}  # uniqueness is the service's (one transaction)

    def get_logo_url(self, challenge) -> str | None:
        return reverse("challenges:logo", kwargs={"slug": challenge.slug}) if challenge.logo else None


class OrganizerInviteSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=254, help_text="Username or email of an existing account.")


class ManagedPhaseSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    public_case_ids = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, max_length=100_000,
        help_text=Phase._meta.get_field("public_case_ids").help_text,
    )
    public_part = serializers.SerializerMethodField(
        help_text="A split phase's public test cases as scored now (the organizers' list or the drawn one); null "
        "for other phases or without a test dataset. The private part is every other test case."
    )

    class Meta:
        model = Phase
        fields = ["id", "challenge", "order", *PHASE_FIELDS, "public_part"]
        read_only_fields = ["order"]
        extra_kwargs: dict[str, dict] = {"slug": {"validators": []}}

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_public_part(self, phase: Phase) -> list[str] | None:
        if not phase.is_split or phase.dataset is None:
            return None
        parts = phase_parts(phase)
        return parts["public"] if parts else None

    def get_validators(self):
        return []  # the (challenge, slug) uniqueness is checked by the service with the challenge it knows


class MoveSerializer(serializers.Serializer):
    """Move a phase or a registration question one place up or down."""

    direction = serializers.ChoiceField(choices=["up", "down"])


class RegistrationAnswerSerializer(serializers.Serializer):
    question = serializers.IntegerField(help_text="The question's id.")
    label = serializers.CharField(help_text="The question's label now.")
    removed = serializers.BooleanField(help_text="The question was removed from the form (its answers are kept).")
    value = serializers.CharField(help_text='The answer as given: text, the option chosen, or "yes"/"no".')


class ManagedRegistrationSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    answers = serializers.SerializerMethodField()

    class Meta:
        model = Registration
        fields = ["id", "user", "status", "decision_message", "created", "answers"]

    @extend_schema_field(RegistrationAnswerSerializer(many=True))
    def get_answers(self, registration) -> list[dict]:
        return [
            {"question": answer.question_id, "label": answer.question.label,
             "removed": answer.question.removed_at is not None, "value": answer.value}
            for answer in sorted(registration.answers.all(), key=lambda a: (a.question.order, a.question_id))
        ]


class RegistrationDecisionSerializer(serializers.Serializer):
    registrations = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), allow_empty=False
    )
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    message = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")

    class Meta:
        model = AuditEvent
        fields = ["id", "created", "actor", "action", "target", "changes", "note"]


class BundleUploadSerializer(serializers.Serializer):
    bundle = serializers.FileField(help_text="A zip with challenge.yaml at its top (docs/bundles.md).")


class BundleImportSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="The imported challenge (null until done)."
    )

    class Meta:
        model = BundleImport
        fields = ["id", "slug", "status", "stage", "progress", "error", "challenge", "created", "finished"]


class TermsVersionSerializer(serializers.ModelSerializer):
    accepted = serializers.IntegerField(read_only=True, help_text="How many users accepted this version.")

    class Meta:
        model = ChallengeTerms
        fields = ["version", "text", "created", "accepted"]
        read_only_fields = ["version", "created"]


class TermsPublishSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="Markdown; raw HTML is stripped when shown.")


class ManagedQuestionSerializer(serializers.ModelSerializer):
    field_name = serializers.CharField(read_only=True, help_text="The key of its answer in a registration request.")
    answer_count = serializers.SerializerMethodField()

    class Meta:
        model = RegistrationQuestion
        fields = ["id", "field_name", "order", *QUESTION_FIELDS, "removed_at", "answer_count"]
        read_only_fields = ["order", "removed_at"]

    def get_answer_count(self, question) -> int:
        return question.answers.count()


class ManagedAnnouncementSerializer(AnnouncementSerializer):
    author = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who posted it (null: a deleted account)."
    )

    class Meta(AnnouncementSerializer.Meta):
        fields = [*AnnouncementSerializer.Meta.fields, "author", "email_participants", "notified_at"]
        read_only_fields = ["notified_at"]
