from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from spinebench.workers.services import phase_unserved_message

from .models import Announcement, Challenge, ChallengeTerms, Phase, Registration, RegistrationQuestion
from .questions import asked_questions
from .templatetags.spinebench import markdown


class PhaseSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    primary_metric = serializers.CharField(source="ranking_metric", read_only=True)
    metrics = serializers.SerializerMethodField()
    is_open = serializers.BooleanField(read_only=True)
    training_dataset = serializers.SerializerMethodField()
    accepting_uploads = serializers.SerializerMethodField()
    not_accepting_reason = serializers.SerializerMethodField()

    class Meta:
        model = Phase
        fields = [
            "id", "challenge", "slug", "title", "description", "task", "submission_kind", "is_open", "opens_at",
            "closes_at", "submission_limit", "submission_limit_period_hours", "max_upload_bytes",
            "show_case_results", "primary_metric", "metrics", "ranking_method", "selection", "decimal_places",
            "training_dataset", "accepting_uploads", "not_accepting_reason", "max_chosen", "score_visibility",
            "scores_revealed_at", "evaluation_version",
        ]

    def get_metrics(self, phase) -> list[dict]:
        return [{"key": key, "direction": phase.direction(key)} for key in phase.leaderboard_metrics]

    def get_training_dataset(self, phase) -> int | None:
        return phase.training_dataset_id

    def get_accepting_uploads(self, phase) -> bool:
        """False while no live worker serves an algorithm phase's container queue (uploads are refused then)."""
        return not phase_unserved_message(phase)

    def get_not_accepting_reason(self, phase) -> str:
        return phase_unserved_message(phase)


class RegistrationQuestionSerializer(serializers.ModelSerializer):
    field_name = serializers.CharField(
        read_only=True, help_text="The key of its answer in `answers` when registering (`question_<id>`)."
    )

    class Meta:
        model = RegistrationQuestion
        fields = ["id", "field_name", "label", "help_text", "kind", "options", "required"]


class ChallengeSerializer(serializers.ModelSerializer):
    phases = serializers.SerializerMethodField()
    registration_questions = serializers.SerializerMethodField()

    class Meta:
        model = Challenge
        fields = ["slug", "title", "description", "registration_mode", "phases", "registration_questions"]

    @extend_schema_field(RegistrationQuestionSerializer(many=True))
    def get_registration_questions(self, challenge) -> list[dict]:
        """What registering asks, in order: answer each in `answers` under its `field_name`."""
        return RegistrationQuestionSerializer(asked_questions(challenge), many=True).data

    def get_phases(self, challenge) -> list[dict]:
        from spinebench.access import visible_phases

        user = self.context["request"].user
        return [{"id": p.id, "slug": p.slug, "title": p.title} for p in visible_phases(challenge, user)]


class RegistrationRequestSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.JSONField(), required=False, default=dict,
        help_text='The answers to the challenge\'s registration questions, keyed by each question\'s field_name, e.g. '
        '{"question_3": "student", "question_4": true}. Errors come back keyed the same way under `answers`.',
    )


class RegistrationSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Registration
        fields = ["challenge", "status", "created"]


class TermsSerializer(serializers.ModelSerializer):
    accepted_at = serializers.SerializerMethodField()

    class Meta:
        model = ChallengeTerms
        fields = ["version", "text", "created", "accepted_at"]

    def get_accepted_at(self, terms) -> str | None:
        """When you accepted this version (null: not accepted, or not signed in)."""
        user = self.context["request"].user
        if not user.is_authenticated:
            return None
        acceptance = terms.acceptances.filter(user=user).first()
        return acceptance.accepted_at.isoformat() if acceptance else None


class AnnouncementSerializer(serializers.ModelSerializer):
    """An announcement as everyone who may see the challenge reads it."""

    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    body_html = serializers.SerializerMethodField()

    class Meta:
        model = Announcement
        fields = ["id", "challenge", "title", "body", "body_html", "created", "updated"]

    def get_body_html(self, announcement) -> str:
        """The body rendered from markdown, raw HTML stripped (as on the challenge page)."""
        return str(markdown(announcement.body))
