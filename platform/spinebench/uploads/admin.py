from django.contrib import admin

from .models import StorageAccount, StoredUpload


@admin.register(StorageAccount)
class StorageAccountAdmin(admin.ModelAdmin):
    list_display = ["key", "quota_bytes"]
    search_fields = ["key"]


@admin.register(StoredUpload)
class StoredUploadAdmin(admin.ModelAdmin):
    list_display = ["pk", "account", "kind", "size", "original_name", "created"]
    list_filter = ["kind"]
    search_fields = ["account__key", "sha256", "storage_name"]
    readonly_fields = ["account", "owner", "kind", "size", "sha256", "storage_name", "original_name", "created"]
