"""The console's forms. They only shape input: the rules live in the models' validation and the services, whose
ValidationErrors (keyed by field) the views put back on the form with `add_errors`."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from spinebench.challenges import registry
from spinebench.challenges.models import Announcement, Challenge, Phase, Registration, RegistrationQuestion
from spinebench.datasets.models import Dataset

from .images import reencode_image
from .phases import PHASE_FIELDS
from .questions import QUESTION_FIELDS
from .services import CHALLENGE_FIELDS


def add_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Put a service's ValidationError on the form, each message under its field (or on the form itself)."""
    messages = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
    for field, texts in messages.items():
        key = field if field in form.fields else None
        for text in texts:
            form.add_error(key, text if key is not None or field in (None, "__all__") else f"{field}: {text}")


class ChallengeForm(forms.ModelForm):
    logo = forms.FileField(
        required=False,
        help_text="PNG, JPEG, GIF or WebP; re-encoded as PNG by the site, metadata removed.",
    )
    remove_logo = forms.BooleanField(required=False, label="Remove the current logo")

    class Meta:
        model = Challenge
        fields = list(CHALLENGE_FIELDS)
        widgets = {
            "description": forms.Textarea(attrs={
                "rows": 12, "hx-post": "", "hx-trigger": "input changed delay:400ms", "hx-target": "#preview",
                "hx-swap": "innerHTML",
            }),
        }

    def __init__(self, *args, preview_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["description"].widget.attrs["hx-post"] = preview_url
        if not (self.instance.pk and self.instance.logo):
            del self.fields["remove_logo"]

    def clean_logo(self):
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        try:
            return reencode_image(upload)
        except ValidationError as error:
            raise ValidationError(error.message_dict["logo"]) from None

    def _post_clean(self) -> None:
        """Model validation belongs to the service (one transaction); the form checks field shapes only."""

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in CHALLENGE_FIELDS}


class BundleUploadForm(forms.Form):
    bundle = forms.FileField(
        label="Bundle zip",
        help_text="A zip with challenge.yaml at its top (see docs/bundles.md). Datasets are generated on the server; "
        "paths to server folders and organizer lists are not accepted.",
    )


class TermsForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}), label="Terms (markdown)",
        help_text="Publishing makes a new version: every participant accepts it again before downloading training "
        "data or submitting.",
    )


class OrganizerInviteForm(forms.Form):
    user = forms.CharField(max_length=254, label="Username or email", help_text="An existing SpineBench account.")


def _task_choices() -> list[tuple[str, str]]:
    return [(task_id, task_id) for task_id in registry.task_ids()]


class CaseIdsField(forms.CharField):
    """Case ids typed as a list separated by commas, spaces or new lines; a list of strings when cleaned."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value)
        return [item for item in text.replace(",", " ").split() if item]


class PhaseForm(forms.ModelForm):
    task = forms.ChoiceField(choices=_task_choices, help_text=Phase._meta.get_field("task").help_text)
    public_case_ids = CaseIdsField(
        required=False, label="Public case ids",
        help_text=Phase._meta.get_field("public_case_ids").help_text + " Separate them by commas or spaces.",
    )

    class Meta:
        model = Phase
        fields = list(PHASE_FIELDS)
        widgets = {
            "opens_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "closes_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "description": forms.Textarea(attrs={"rows": 5}),
        }

    #: Fields a form may leave out (a form from before they existed): the phase keeps its value, a new one the default.
    OPTIONAL = ("max_chosen", "score_visibility", "public_case_ids", "public_fraction")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.OPTIONAL:
            self.fields[name].required = False

    def _post_clean(self) -> None:
        """As ChallengeForm: the service validates the model inside its transaction."""

    def service_data(self) -> dict:
        data = {name: self.cleaned_data[name] for name in PHASE_FIELDS}
        for name in self.OPTIONAL:
            # An empty list of public case ids means "draw them"; left out of the form, it keeps its value.
            if data[name] in (None, "") or (name == "public_case_ids" and self.add_prefix(name) not in self.data):
                data[name] = getattr(self.instance, name)  # a new form's instance holds the model's defaults
        return data


class RegistrationDecisionForm(forms.Form):
    registrations = forms.ModelMultipleChoiceField(queryset=Registration.objects.none(), label="Registrations")
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    message = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: sent with the approval or rejection notice.",
    )

    def __init__(self, *args, challenge: Challenge, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["registrations"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = challenge.registrations.select_related("user")


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, label="Action", widget=forms.Select(attrs={"class": "form-select"}))

    def __init__(self, *args, actions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["action"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "every action")] + [(name, name) for name in actions]


class QuestionForm(forms.ModelForm):
    """A registration question; the options of a choice question one per line."""

    options = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Options (choice questions)",
        help_text="One option per line; participants choose one of them.",
    )

    class Meta:
        model = RegistrationQuestion
        fields = list(QUESTION_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["options"] = "\n".join(self.instance.options)

    def clean_options(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("options", "").splitlines() if line.strip()]

    def _post_clean(self) -> None:
        """As ChallengeForm: the service validates the model inside its transaction."""

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in QUESTION_FIELDS}


class AnnouncementForm(forms.ModelForm):
    email_participants = forms.BooleanField(
        required=False, label="Also notify every approved participant",
        help_text="On the site, and by email for those who have not switched announcement mail off.",
    )

    class Meta:
        model = Announcement
        fields = ["title", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 8})}
        labels = {"body": "Text (markdown)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            del self.fields["email_participants"]  # an edit never notifies again

    def _post_clean(self) -> None:
        """As ChallengeForm: the service validates the model inside its transaction."""


class DatasetUploadForm(forms.Form):
    """A dataset zip for a challenge (organizers.dataset_uploads). Large files go through the chunk API from the
    page's JavaScript, which fills `upload` with the finished session's id instead of sending `archive`."""

    archive = forms.FileField(
        required=False, label="Dataset zip",
        help_text="A SpineBench dataset (dataset.json, inputs/<case_id>/, ground_truth/) or a public layout below.",
    )
    slug = forms.SlugField(max_length=50, help_text="The dataset's name in this challenge, e.g. test-2027.")
    title = forms.CharField(max_length=200, required=False)
    layout = forms.ChoiceField(help_text="spinebench reads task and split from dataset.json; a public layout is "
                               "imported as the task and split named below.")
    task = forms.ChoiceField(required=False, help_text="Public layouts: the task the zip is imported as.")
    split = forms.ChoiceField(required=False, choices=[("", "from dataset.json"), ("train", "train"),
                                                       ("test", "test")])
    upload = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, layouts: list[str], tasks: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        layout, task = self.fields["layout"], self.fields["task"]
        assert isinstance(layout, forms.ChoiceField) and isinstance(task, forms.ChoiceField)
        layout.choices = [(name, name) for name in layouts]
        task.choices = [("", "from dataset.json"), *((name, name) for name in tasks)]


class DatasetAttachForm(forms.Form):
    phase = forms.ModelChoiceField(queryset=Phase.objects.none(), help_text="A phase of this challenge.")
    role = forms.ChoiceField(choices=[("test", "scored (test) dataset"), ("training", "training dataset")],
                             help_text="Submissions are scored against the test dataset; participants download the "
                             "training dataset with its labels.")

    def __init__(self, *args, challenge, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["phase"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = challenge.phases.all()


class PhaseDatasetsForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none(), required=False, label="Scored (test) dataset",
                                     empty_label="— none —")
    training_dataset = forms.ModelChoiceField(queryset=Dataset.objects.none(), required=False, label="Training dataset",
                                              empty_label="— none —")

    def __init__(self, *args, challenge, **kwargs):
        super().__init__(*args, **kwargs)
        scored, training = self.fields["dataset"], self.fields["training_dataset"]
        assert isinstance(scored, forms.ModelChoiceField) and isinstance(training, forms.ModelChoiceField)
        scored.queryset = challenge.datasets.all()
        training.queryset = challenge.datasets.filter(split="train")
