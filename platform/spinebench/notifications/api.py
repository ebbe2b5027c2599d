"""The notification API: your own notifications (newest first), marking one or all as read."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from . import services
from .models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "link", "created", "read_at"]
        read_only_fields = fields


MARKED = inline_serializer("NotificationsMarked", {"marked_read": serializers.IntegerField()})


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your notifications; `?unread=1` lists only unread ones. Mail delivery details stay internal."""

    serializer_class = NotificationSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = Notification.objects.none()  # for the schema; get_queryset() limits to the caller's rows

    def get_queryset(self):
        rows = Notification.objects.filter(user=self.request.user)
        if self.request.query_params.get("unread") in ("1", "true"):
            rows = rows.filter(read_at__isnull=True)
        return rows

    @extend_schema(request=None, responses={200: MARKED})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None, format=None):
        notification = self.get_object()
        return Response({"marked_read": services.mark_read(user=request.user, pks=[notification.pk])})

    @extend_schema(request=None, responses={200: MARKED})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request, format=None):
        return Response({"marked_read": services.mark_read(user=request.user)})
