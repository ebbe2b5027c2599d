"""Sign-up (with a required, unique email address), profile, email change and token forms."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User

from .email_links import email_taken
from .models import Profile
from .tokens import MAX_TOKEN_DAYS

EMAIL_EXISTS = "An account with this email exists. Log in, or reset your password from the login page."


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="We send a link to verify it; it is never shown publicly.")

    class Meta:  # UserCreationForm.Meta's model and username field, with the email asked too
        model = User
        fields = ("username", "email")
        field_classes = {"username": UsernameField}

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if email_taken(email):
            raise forms.ValidationError(EMAIL_EXISTS, code="email_exists")
        return email


class ProfileForm(forms.ModelForm):
    website = forms.URLField(required=False, assume_scheme="https", help_text="Your or your group's web page.")

    class Meta:
        model = Profile
        fields = ["display_name", "affiliation", "website", "orcid", "github", "show_on_leaderboards"]


class EmailChangeForm(forms.Form):
    email = forms.EmailField(label="New email address")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if email.lower() == (self.user.email or "").lower():
            raise forms.ValidationError("This is already your address.")
        if email_taken(email, exclude_pk=self.user.pk):
            raise forms.ValidationError(EMAIL_EXISTS, code="email_exists")
        return email


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop' or 'CI'.")
    expires_in_days = forms.IntegerField(min_value=1, max_value=MAX_TOKEN_DAYS, initial=90, label="Expires in (days)")
