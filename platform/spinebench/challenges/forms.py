"""The registration form: one field per question the challenge asks (named by the question's `field_name`). The form
shapes the input; `services.register` checks the answers again with the same rules the API uses."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .models import Challenge, RegistrationQuestion
from .questions import asked_questions


def _field(question: RegistrationQuestion) -> forms.Field:
    label, hint, required = question.label, question.help_text, question.required
    if question.kind == RegistrationQuestion.Kind.CHECKBOX:
        return forms.BooleanField(label=label, help_text=hint, required=required)
    if question.kind == RegistrationQuestion.Kind.CHOICE:
        choices = [("", "Choose…" if required else "—")] + [(option, option) for option in question.options]
        return forms.ChoiceField(choices=choices, label=label, help_text=hint, required=required)
    return forms.CharField(
        max_length=RegistrationQuestion.ANSWER_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}),
        label=label, help_text=hint, required=required,
    )


class RegistrationForm(forms.Form):
    def __init__(self, *args, challenge: Challenge, **kwargs):
        super().__init__(*args, **kwargs)
        for question in asked_questions(challenge):
            self.fields[question.field_name] = _field(question)

    def add_service_errors(self, error: ValidationError) -> None:
        messages = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
        for field, texts in messages.items():
            for text in texts:
                self.add_error(field if field in self.fields else None, text)
