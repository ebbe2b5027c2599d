"""Challenge, Registration and Phase. Every limit or switch an organizer sets is a field with help text; the
leaderboard configuration of a phase is validated against the task registry on every save."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from . import registry
from .roles import remembered


class Challenge(models.Model):
    class RegistrationMode(models.TextChoices):
        AUTO = "auto", "approved automatically"
        APPROVAL = "approval", "approved by an organizer"

    slug = models.SlugField(unique=True, help_text="URL name of the challenge, e.g. aasce-2019.")
    title = models.CharField(max_length=200)
    summary = models.CharField(
        max_length=300, blank=True,
        help_text="One or two sentences for the challenge list (empty: the description's start).",
    )
    description = models.TextField(blank=True, help_text="Markdown; rendered with raw HTML stripped.")
    logo = models.FileField(
        upload_to="challenge-images/", blank=True,
        help_text="Logo shown on the challenge page: re-encoded as PNG by the site, metadata (EXIF) removed.",
    )
    organizers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="organized_challenges",
        help_text="Users who manage this challenge, see every submission and approve registrations.",
    )
    registration_mode = models.CharField(
        max_length=16, choices=RegistrationMode.choices, default=RegistrationMode.AUTO,
        help_text="Whether a registration is approved at once or waits for an organizer.",
    )
    is_public = models.BooleanField(default=True, help_text="Hidden challenges are visible to their organizers only.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("challenges:detail", kwargs={"slug": self.slug})

    def is_organizer(self, user) -> bool:
        """One query per challenge and user per request (spinebench.challenges.roles)."""
        if not (user and user.is_authenticated):
            return False
        return user.is_superuser or remembered(
            ("organizer", self.pk, user.pk), lambda: self.organizers.filter(pk=user.pk).exists()
        )

    def is_participant(self, user) -> bool:
        """An approved registration (organizers count as participants of their own challenge)."""
        if not (user and user.is_authenticated):
            return False
        return self.is_organizer(user) or remembered(
            ("participant", self.pk, user.pk),
            lambda: self.registrations.filter(user=user, status=Registration.Status.APPROVED).exists(),
        )

    def is_visible_to(self, user) -> bool:
        return self.is_public or self.is_organizer(user)


class Registration(models.Model):
    """A user's request to take part in a challenge. This row is also the lock that serialises that participant's
    submissions (see spinebench.submissions.services.create_submission)."""

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for approval"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="registrations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="registrations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decision_message = models.TextField(
        blank=True, help_text="An organizer's message with the approval or rejection, sent with its notice.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "user"], name="one_registration_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.challenge.slug} ({self.status})"


def _validate_string_list(value, *, name: str, items: str = "metric keys") -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError({name: f"{name} must be a list of {items}, got {value!r}"})


class Phase(models.Model):
    class SubmissionKind(models.TextChoices):
        CSV = "csv", "predictions file (a CSV, or a zip of case folders for per-case formats)"
        ALGORITHM = "algorithm", "algorithm container"

    class RankingMethod(models.TextChoices):
        PRIMARY = "primary", "primary metric"
        MEAN_RANK = "mean-rank", "mean of per-metric ranks"
        MEDIAN_RANK = "median-rank", "median of per-metric ranks"

    class ScoreVisibility(models.TextChoices):
        PUBLIC = "public", "public: scores and ranks are shown as submissions are scored"
        BLIND = "blind", "blind: participants see only succeeded or failed until the organizers reveal the leaderboard"
        SPLIT = "split", (
            "public-private split: the live leaderboard ranks the public test cases; the final one, ranked on the "
            "private cases, is shown when the organizers reveal it"
        )

    class Selection(models.TextChoices):
        BEST = "best", "best submission per participant"
        LATEST = "latest", "latest submission per participant"
        CHOSEN = "chosen", "best of the submissions each participant chose"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    slug = models.SlugField(help_text="URL name of the phase inside its challenge, e.g. test.")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown shown on the phase's pages.")
    order = models.PositiveIntegerField(default=0, help_text="Position among the challenge's phases.")
    submission_kind = models.CharField(
        max_length=16, choices=SubmissionKind.choices, default=SubmissionKind.CSV,
        help_text="What participants upload: predictions (one CSV, or a zip of case folders for tasks whose "
        "predictions are files per case), or a `docker save` archive of an algorithm.",
    )
    task = models.CharField(
        max_length=64, validators=[registry.validate_task_id],
        help_text="Task id from the evaluators' task registry (evaluators.tasks), e.g. aasce-cobb.",
    )
    opens_at = models.DateTimeField(null=True, blank=True, help_text="Submissions accepted from (empty: always).")
    closes_at = models.DateTimeField(
        null=True, blank=True, help_text="Submissions accepted until (empty: never closes)."
    )
    is_public = models.BooleanField(
        default=True, help_text="Hidden phases and their leaderboards are for organizers only."
    )
    show_case_results = models.BooleanField(
        default=False, help_text="Show per-case metrics to the submitter and on public submission pages.",
    )
    submission_limit = models.PositiveIntegerField(
        null=True, blank=True, default=5,
        help_text="Submissions per participant per period (failed and cancelled ones do not count); empty = no limit.",
    )
    submission_limit_period_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1)], help_text="Length of the submission-limit window in hours.",
    )
    submission_total_limit = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Submissions per participant over the whole phase (failed and cancelled ones do not count); "
        "empty = no total limit.",
    )
    max_upload_bytes = models.PositiveBigIntegerField(
        default=10 * 1024 * 1024, help_text="Largest accepted upload (CSV file or algorithm archive) in bytes.",
    )
    time_limit_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1)],
        help_text="A submission not finished this long after it was created is failed by the periodic sweep.",
    )
    # Algorithm-container limits (used by spinebench.algorithms for submission_kind = algorithm).
    case_time_limit_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1)], help_text="Wall-clock limit per algorithm container run.",
    )
    memory_limit_mb = models.PositiveIntegerField(
        default=2048,
        validators=[MinValueValidator(16)],
        help_text="Memory (= memory + swap) of an algorithm container in MiB.",
    )
    cpu_limit = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.1)], help_text="CPU quota of an algorithm container in cores.",
    )
    pids_limit = models.PositiveIntegerField(default=128, help_text="Process limit inside an algorithm container.")
    output_limit_mb = models.PositiveIntegerField(default=256, help_text="Size cap of an algorithm's /output in MiB.")
    requires_gpu = models.BooleanField(
        default=False, help_text="Run algorithm containers on the GPU queue with one GPU."
    )
    # Leaderboard configuration.
    primary_metric = models.CharField(
        max_length=64,
        blank=True,
        help_text="Metric key that ranks the leaderboard (empty: the task's primary metric).",
    )
    extra_metrics = models.JSONField(
        default=list, blank=True,
        help_text="More metric keys shown as columns (and ranked by the mean/median rank methods), e.g. "
        '["mae_pt", "dice@translated"].',
    )
    metric_directions = models.JSONField(
        default=dict, blank=True,
        help_text='Overrides of "higher"/"lower" per metric key; unlisted metrics follow the task registry.',
    )
    decimal_places = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(10)], help_text="Decimal places shown on the leaderboard.",
    )
    ranking_method = models.CharField(
        max_length=16, choices=RankingMethod.choices, default=RankingMethod.PRIMARY,
        help_text="How entries are ordered: by the primary metric, or by the mean or median of per-metric ranks.",
    )
    selection = models.CharField(
        max_length=16, choices=Selection.choices, default=Selection.BEST,
        help_text="Which submission of a participant is on the leaderboard.",
    )
    max_chosen = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)],
        help_text="Selection `chosen`: how many succeeded submissions a participant may choose to represent them "
        "(the best of them is ranked; until they choose, their best one counts).",
    )
    auto_publish = models.BooleanField(
        default=True,
        help_text="Put a succeeded submission on the leaderboard at once (otherwise an organizer publishes it).",
    )
    score_visibility = models.CharField(
        max_length=16, choices=ScoreVisibility.choices, default=ScoreVisibility.PUBLIC,
        help_text="Who sees scores and ranks: everyone who sees the phase (public), or, on a blind phase, only its "
        "organizers until they reveal the leaderboard (participants see succeeded or failed, nothing more, in pages, "
        "the API, exports, figures and notifications). Separate from is_public, which hides the whole phase.",
    )
    scores_revealed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the organizers revealed this blind phase's leaderboard, or the final (private part) "
        "leaderboard of a split phase (empty: not yet).",
    )
    public_case_ids = models.JSONField(
        default=list, blank=True,
        help_text='Split phases: ids of the test cases in the public part, e.g. ["case-001", "case-007"]; the other '
        "cases form the private part. Empty: the platform draws public_fraction of the cases with a secret seed.",
    )
    public_fraction = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text="Split phases without public_case_ids: the share of the test cases drawn into the public part.",
    )
    split_seed = models.CharField(
        max_length=64, blank=True, editable=False,
        help_text="Secret seed of the drawn public part (set once, never shown to participants): the same seed "
        "draws the same cases again.",
    )
    evaluation_version = models.PositiveIntegerField(
        default=1,
        help_text="Version of this phase's evaluation (ground truth and evaluator): every score records the version "
        "that produced it; a re-score of the phase moves it to the next version at once for all its submissions.",
    )

    class Meta:
        ordering = ["challenge", "order", "pk"]
        constraints = [models.UniqueConstraint(fields=["challenge", "slug"], name="phase_slug_unique_in_challenge")]

    def __str__(self) -> str:
        return f"{self.challenge.slug}/{self.slug}"

    def save(self, *args, **kwargs):
        self.validate_leaderboard_config()
        if self.is_split and not self.split_seed:
            self.split_seed = secrets.token_hex(16)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "split_seed"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("leaderboards:phase", kwargs={"challenge": self.challenge.slug, "phase": self.slug})

    # datasets ------------------------------------------------------------------------------------------------
    # The link row (`datasets.PhaseDatasets`) belongs to the datasets app, above this one; it is read through its
    # reverse accessor, which needs no import. Set it with `spinebench.datasets.services.link_phase_datasets`.
    @property
    def dataset(self):
        """The dataset submissions are scored against, or None."""
        link = self._dataset_link()
        return link.dataset if link is not None else None

    @property
    def dataset_id(self) -> int | None:
        link = self._dataset_link()
        return link.dataset_id if link is not None else None

    @property
    def training_dataset(self):
        """The training split participants of this phase may download, or None."""
        link = self._dataset_link()
        return link.training_dataset if link is not None else None

    @property
    def training_dataset_id(self) -> int | None:
        link = self._dataset_link()
        return link.training_dataset_id if link is not None else None

    def _dataset_link(self):
        try:
            return self.dataset_link  # reverse accessor of datasets.PhaseDatasets
        except ObjectDoesNotExist:
            return None
    @property
    def scores_hidden(self) -> bool:
        """A blind phase whose leaderboard is not revealed yet: scores and ranks are for its organizers only."""
        return self.score_visibility == self.ScoreVisibility.BLIND and self.scores_revealed_at is None

    @property
    def is_split(self) -> bool:
        """Each submission is evaluated once on the public test cases (the live leaderboard) and once on the
        private ones (the final leaderboard)."""
        return self.score_visibility == self.ScoreVisibility.SPLIT

    @property
    def private_part_hidden(self) -> bool:
        """A split phase whose final leaderboard is not revealed yet: the private part's scores, ranks and counts
        are for its organizers only."""
        return self.is_split and self.scores_revealed_at is None

    # leaderboard configuration -------------------------------------------------------------------------------
    @property
    def ranking_metric(self) -> str:
        return self.primary_metric or registry.phase_task(self).primary

    @property
    def takes_csv(self) -> bool:
        """Predictions phases of tasks with a CSV format take one CSV; the others a zip of per-case folders."""
        return "csv" in registry.phase_task(self).prediction_formats

    @property
    def leaderboard_metrics(self) -> list[str]:
        """Columns in order: the ranking metric first, then the extra metrics."""
        return [self.ranking_metric] + [key for key in self.extra_metrics if key != self.ranking_metric]

    def direction(self, key: str) -> str:
        return self.metric_directions.get(key) or registry.phase_direction(self, key)

    def metric_title(self, key: str) -> str:
        return registry.phase_metric_title(self, key)

    def clean(self) -> None:
        super().clean()
        self.validate_leaderboard_config()
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": "closes_at must be after opens_at"})

    def validate_leaderboard_config(self) -> None:
        """Check the leaderboard fields against the task registry; the error is keyed by the field at fault."""
        registry.validate_task_id(self.task)
        _validate_string_list(self.extra_metrics, name="extra_metrics")
        if not isinstance(self.metric_directions, dict):
            raise ValidationError(
                {"metric_directions": "metric_directions must be an object {metric: 'higher'|'lower'}"}
            )
        for field, keys in (
            ("primary_metric", [self.ranking_metric] if self.ranking_metric else []),  # custom: none declared yet
            ("extra_metrics", self.extra_metrics),
            ("metric_directions", list(self.metric_directions)),
        ):
            for key in keys:
                try:
                    registry.phase_direction(self, key)
                except ValidationError as error:
                    raise ValidationError({field: error.messages}) from None
        for key, direction in self.metric_directions.items():
            if direction not in ("higher", "lower"):
                raise ValidationError(
                    {"metric_directions": f"direction of {key!r} must be 'higher' or 'lower', got {direction!r}"}
                )
        _validate_string_list(self.public_case_ids, name="public_case_ids", items="case ids")
        if len(set(self.public_case_ids)) != len(self.public_case_ids):
            raise ValidationError({"public_case_ids": "public_case_ids must not repeat a case id"})

    # submission window ---------------------------------------------------------------------------------------
    def is_open(self, now=None) -> bool:
        now = now or timezone.now()
        return (self.opens_at is None or self.opens_at <= now) and (self.closes_at is None or now < self.closes_at)

    @property
    def submission_limit_period(self) -> timedelta:
        return timedelta(hours=self.submission_limit_period_hours)


class ChallengeTerms(models.Model):
    """One version of a challenge's terms / data-use agreement (markdown). The newest version is the one in force: a
    participant accepts it before downloading training data or submitting, and a new version asks again."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="terms_versions")
    version = models.PositiveIntegerField(help_text="1, 2, ... in the order the organizers published them.")
    text = models.TextField(help_text="Markdown; rendered with raw HTML stripped.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["challenge", "-version"]
        constraints = [models.UniqueConstraint(fields=["challenge", "version"], name="one_terms_version")]

    def __str__(self) -> str:
        return f"{self.challenge.slug} terms v{self.version}"


class TermsAcceptance(models.Model):
    """A user's acceptance of one version of the terms, with its time."""

    terms = models.ForeignKey(ChallengeTerms, on_delete=models.CASCADE, related_name="acceptances")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terms_acceptances")
    accepted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["terms", "user"], name="one_acceptance_per_version")]

    def __str__(self) -> str:
        return f"{self.user} accepted {self.terms}"


class RegistrationQuestion(models.Model):
    """A question the organizers ask everyone who registers. Editing one keeps the stored answers (a choice answer
    keeps the option text it was given even when the options change); removing an answered question archives it
    (`removed_at`): it is no longer asked, and its answers stay in the registrations page and the CSV export."""

    class Kind(models.TextChoices):
        TEXT = "text", "text"
        CHOICE = "choice", "choice among options"
        CHECKBOX = "checkbox", "checkbox"

    #: Caps on what an organizer writes and what a participant answers.
    LABEL_MAX_LENGTH = 300
    OPTION_MAX_LENGTH = 200
    MAX_OPTIONS = 50
    ANSWER_MAX_LENGTH = 2000

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="registration_questions")
    label = models.CharField(max_length=LABEL_MAX_LENGTH, help_text="The question as participants read it.")
    help_text = models.CharField(max_length=500, blank=True, help_text="An optional hint shown under the question.")
    kind = models.CharField(
        max_length=16, choices=Kind.choices, default=Kind.TEXT,
        help_text="text: a free answer (at most 2000 characters); choice: one of `options`; checkbox: ticked or not "
        "(a required checkbox must be ticked, e.g. an agreement).",
    )
    options = models.JSONField(
        default=list, blank=True, help_text='The options of a choice question, in order, e.g. ["student", "industry"].'
    )
    required = models.BooleanField(default=True, help_text="Whether a registration must answer it.")
    order = models.PositiveIntegerField(default=0, help_text="Position among the challenge's questions.")
    removed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the organizers removed this answered question: no longer asked, its answers are kept.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["challenge", "order", "pk"]

    def __str__(self) -> str:
        return f"{self.challenge.slug}: {self.label}"

    @property
    def field_name(self) -> str:
        """The key of this question's answer in forms, API payloads and errors."""
        return f"question_{self.pk}"

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.options, list) or not all(isinstance(item, str) for item in self.options):
            raise ValidationError({"options": "options must be a list of texts."})
        self.options = [item.strip() for item in self.options if item.strip()]
        if self.kind != self.Kind.CHOICE:
            if self.options:
                raise ValidationError({"options": f"A {self.kind} question has no options."})
            return
        if len(self.options) < 2:
            raise ValidationError({"options": "A choice question needs at least two options."})
        if len(self.options) > self.MAX_OPTIONS:
            raise ValidationError({"options": f"At most {self.MAX_OPTIONS} options."})
        if len(set(self.options)) != len(self.options):
            raise ValidationError({"options": "Each option appears once."})
        too_long = [item for item in self.options if len(item) > self.OPTION_MAX_LENGTH]
        if too_long:
            raise ValidationError({"options": f"An option has at most {self.OPTION_MAX_LENGTH} characters."})


class RegistrationAnswer(models.Model):
    """One registration's answer to one question, as text: the answer given, the option chosen, or "yes"/"no" for a
    checkbox. An empty text is an optional question left unanswered. The console never deletes an answered question
    (it archives it); the cascade is for deleting a whole challenge."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(RegistrationQuestion, on_delete=models.CASCADE, related_name="answers")
    value = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registration", "question"], name="one_answer_per_question"),
        ]

    def __str__(self) -> str:
        return f"{self.registration} / {self.question_id}: {self.value[:40]}"


class Announcement(models.Model):
    """News the organizers post on the challenge page (markdown, rendered with raw HTML stripped), newest first; seen
    by whoever may see the challenge. `emailed` asks the notifications app to tell the approved participants."""

    TITLE_MAX_LENGTH = 200

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="announcements")
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    body = models.TextField(help_text="Markdown; rendered with raw HTML stripped.")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="announcements",
    )
    email_participants = models.BooleanField(
        default=False,
        help_text="Notify every approved participant (on the site, and by email unless they switched announcements "
        "off).",
    )
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the participants were notified (empty: not, or not yet)."
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"{self.challenge.slug}: {self.title}"
