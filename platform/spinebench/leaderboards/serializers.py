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
    method_name = serializers.CharField(help_text="The method card's name (may be empty).")
    paper_url = serializers.CharField(help_text="The method card's paper link, http(s) or empty.")
    code_url = serializers.CharField(help_text="The method card's code link, http(s) or empty.")


class LeaderboardSerializer(serializers.Serializer):
    phase = serializers.IntegerField()
    part = serializers.CharField(
        help_text="Which snapshot kind answered: live (an unsplit phase), public (a split phase's live leaderboard) "
        "or private (its final leaderboard, with ?part=final)."
    )
    metrics = serializers.ListField(child=serializers.CharField(), help_text="Leaderboard columns, ranking one first.")
    rows = LeaderboardRowSerializer(many=True)
    as_of = serializers.DateTimeField(
        required=False, help_text="With `?at=`: the time of the leaderboard version answered."
    )


class HistoryPointSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    rank = serializers.IntegerField()
    value = serializers.FloatField(allow_null=True, help_text="The ranking metric's value.")
    submission = serializers.IntegerField()


class HistorySeriesSerializer(serializers.Serializer):
    participant = serializers.CharField()
    is_baseline = serializers.BooleanField()
    points = HistoryPointSerializer(many=True)


class HistorySerializer(serializers.Serializer):
    """GET /api/phases/{id}/history/: the leaderboard over time, read from its snapshots."""

    metric = serializers.CharField(help_text="The ranking metric whose values the points carry.")
    direction = serializers.CharField()
    times = serializers.ListField(child=serializers.DateTimeField(), help_text="Each leaderboard version's time.")
    series = HistorySeriesSerializer(many=True)
