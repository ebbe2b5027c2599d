from django import forms

from .method_cards import validate_web_url


class MethodCardForm(forms.Form):
    """The method card: on the upload form, and alone on the page that edits it after the upload."""

    method_name = forms.CharField(max_length=100, required=False, help_text="Shown on the leaderboard.")
    method_description = forms.CharField(
        max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="A sentence or two."
    )
    paper_url = forms.URLField(
        max_length=500, required=False, validators=[validate_web_url], assume_scheme="https",
        help_text="http(s) link to the paper.",
    )
    code_url = forms.URLField(
        max_length=500, required=False, validators=[validate_web_url], assume_scheme="https",
        help_text="http(s) link to the code.",
    )


class SubmissionForm(MethodCardForm):
    """A file in the request, or (filled in by the page's chunked uploader, static/spinebench/chunked_upload.js) the
    id of the submitter's finished upload session for a large file."""

    field_order = ["file", "upload", "comment"]

    file = forms.FileField(
        required=False, help_text="Predictions CSV (or a `docker save` archive for an algorithm phase)."
    )
    upload = forms.UUIDField(required=False, widget=forms.HiddenInput)
    comment = forms.CharField(max_length=500, required=False)

    def clean(self):
        cleaned = super().clean()
        if not self.errors and bool(cleaned.get("file")) == bool(cleaned.get("upload")):
            self.add_error("file", "Choose one file to upload.")
        return cleaned
