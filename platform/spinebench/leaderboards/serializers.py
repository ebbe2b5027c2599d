"""The API's leaderboard answer (GET /api/phases/{id}/leaderboard/), described for the OpenAPI schema: the view
returns spinebench.leaderboards.services.export_records rows as they are."""

from rest_framework import serializers


class LeaderboardRowSerializer(serializers.Serializer):
    """One ranked submission; besides these fields, one number per key of the answer's `metrics`."""

    rank = serializers.IntegerField(allow_null=True)
    participant = serializers.CharField()
    is_baseline = serializers.BooleanField()
    team = serializers.IntegerField(
        allow_null=True, help_text="The entry's team (GET /api/teams/{id}/ lists its members); null: one person."
    )
    submission = serializers.IntegerField(help_text="Submission id (GET /api/submissions/{id}/).")
    created = serializers.DateTimeField()


class LeaderboardSerializer(serializers.Serializer):
    phase = serializers.IntegerField()
    metrics = serializers.ListField(child=serializers.CharField(), help_text="Leaderboard columns, ranking one first.")
    rows = LeaderboardRowSerializer(many=True)
