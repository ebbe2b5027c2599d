from rest_framework import serializers

from .models import ApiToken
from .tokens import MAX_TOKEN_DAYS


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, write_only=True)
    name = serializers.CharField(max_length=100, required=False, default="API token")
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=MAX_TOKEN_DAYS, required=False,
        help_text="Lifetime in days (default: the site's SPINEBENCH_TOKEN_TTL_DAYS, 90 unless changed).",
    )


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it later: never the secret (it is not stored), only its first characters."""

    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "kind", "prefix", "created", "last_used", "expires", "revoked", "is_active"]
        read_only_fields = fields


class IssuedTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The secret: shown only in this response; send it as `Token <secret>`.")

    class Meta(ApiTokenSerializer.Meta):
        fields = ["token", *ApiTokenSerializer.Meta.fields]
        read_only_fields = fields
