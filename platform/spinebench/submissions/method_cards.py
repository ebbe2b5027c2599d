"""Method cards: the name, short description and paper / code links a participant gives a submission, shown on the
leaderboard. Links are http(s) only, so a `javascript:` or `data:` URL can never become a link on a page. A card may be
edited after the upload (`card_edits.edit_method_card`; who may is spinebench.access.can_edit_method_card's rule); the
leaderboard, its exports and the API show the edited card from the next snapshot on, written at once."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

_WEB_URL = URLValidator(schemes=["http", "https"], message="Enter a full http:// or https:// address.")

#: The submission fields of a method card, in the order forms and the API show them.
FIELDS = ("method_name", "method_description", "paper_url", "code_url")


def validate_web_url(value: str) -> None:
    """An absolute http or https URL (empty is allowed: the card fields are optional)."""
    if value:
        _WEB_URL(value)


@dataclass(frozen=True)
class MethodCard:
    method_name: str = ""
    method_description: str = ""
    paper_url: str = ""
    code_url: str = ""

    def validate(self) -> None:
        """Field-keyed errors, as a form or the API reports them."""
        errors: dict[str, list[str]] = {}
        limits = {"method_name": 100, "method_description": 500, "paper_url": 500, "code_url": 500}
        for field, limit in limits.items():
            value = getattr(self, field)
            if len(value) > limit:
                errors.setdefault(field, []).append(f"At most {limit} characters.")
        for field in ("paper_url", "code_url"):
            try:
                validate_web_url(getattr(self, field))
            except ValidationError as error:
                errors.setdefault(field, []).extend(error.messages)
        if errors:
            raise ValidationError(errors)

    def as_fields(self) -> dict[str, str]:
        return {field: getattr(self, field).strip() for field in FIELDS}
