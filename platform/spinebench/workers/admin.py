from django.contrib import admin

from .models import Requeue, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queues", "pid", "version", "started", "last_seen", "stopped")
    readonly_fields = list_display


@admin.register(Requeue)
class RequeueAdmin(admin.ModelAdmin):
    list_display = ("kind", "object_id", "count", "last_at")
    readonly_fields = list_display
