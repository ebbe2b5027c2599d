"""OpenAPI generation (drf-spectacular) that documents the error answers every API view can give, so the schema
says what clients really receive (the schemathesis run in tests/security/test_api_fuzz.py checks every status code
and body against it). A view's own `extend_schema(responses=...)` keeps precedence for a code it declares.

Which errors an operation documents follows from how DRF answers: 400 when it reads a request body (validation, a
malformed body); 401 and 403 when it authenticates at all (a missing, invalid, revoked or expired token; a permission
refused; a worker token outside the worker endpoints); 404 when its path names an object; 429 when it is
throttled (DRF's throttles, or django-axes' sign-in lockout on the token endpoint)."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The body of every refusal: a sentence for people, and for some refusals a machine-readable code."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False, help_text="Present on submission refusals, e.g. `limit`, `closed`.")


VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"},
                                       {"type": "object"}]},
    "description": "Field name (or `non_field_errors` / `detail`) to the messages about it.",
}


class SpineBenchAutoSchema(AutoSchema):
    def _error_codes(self) -> list[str]:
        codes = []
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes.append("400")
        if self.view.get_authenticators():
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code in responses:
                continue
            if code == "400":
                responses[code] = {
                    "content": {"application/json": {"schema": VALIDATION_ERROR_SCHEMA}},
                    "description": "Invalid request: the messages say what to change.",
                }
            else:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, ["application/json"])
        return responses
