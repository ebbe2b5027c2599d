from django import forms


class SubmissionForm(forms.Form):
    """A file in the request, or (filled in by the page's chunked uploader, static/spinebench/chunked_upload.js) the
    id of the submitter's finished upload session for a large file."""

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
