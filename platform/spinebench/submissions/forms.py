from django import forms


class SubmissionForm(forms.Form):
    file = forms.FileField(help_text="Predictions CSV (or a `docker save` archive for an algorithm phase).")
    comment = forms.CharField(max_length=500, required=False)
