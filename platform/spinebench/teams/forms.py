"""The team pages' forms (each one field; the services check the rules and name the field at fault)."""

from django import forms


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Team name")


class InviteForm(forms.Form):
    who = forms.CharField(max_length=254, label="Username or email address")


class TransferForm(forms.Form):
    to = forms.CharField(max_length=150, label="New leader (username of a member)")


class TeamCapForm(forms.Form):
    max_team_size = forms.IntegerField(
        min_value=1, required=False, label="Most members per team", help_text="Empty: no cap."
    )
