from django.contrib import admin

from .models import AlgorithmImage, AlgorithmRun, ContainerConfig, Job


@admin.register(ContainerConfig)
class ContainerConfigAdmin(admin.ModelAdmin):
    list_display = ["phase", "mode", "image_size_limit_mb", "tmp_limit_mb", "log_lines"]


@admin.register(AlgorithmImage)
class AlgorithmImageAdmin(admin.ModelAdmin):
    list_display = ["image_id", "creator", "user", "size_bytes", "uploads", "created"]
    readonly_fields = ["image_id", "archive_sha256", "repo_tags", "user", "uid", "gid", "architecture", "os",
                       "size_bytes"]


class JobInline(admin.TabularInline):
    model = Job
    extra = 0
    readonly_fields = ["case_id", "status", "error_message", "attempts", "exit_code", "duration_seconds", "log_tail"]


@admin.register(AlgorithmRun)
class AlgorithmRunAdmin(admin.ModelAdmin):
    list_display = ["submission", "image", "image_reused", "worker", "heartbeat_at", "attempts"]
    readonly_fields = ["key"]
    inlines = [JobInline]
