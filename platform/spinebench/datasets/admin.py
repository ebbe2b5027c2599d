from django.contrib import admin

from .models import Case, Dataset, PhaseDatasets


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "task", "split", "path", "source"]
    list_filter = ["task", "split"]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["case_id", "dataset", "group"]
    list_filter = ["dataset"]
    search_fields = ["case_id"]


@admin.register(PhaseDatasets)
class PhaseDatasetsAdmin(admin.ModelAdmin):
    list_display = ["phase", "dataset", "training_dataset"]
    list_select_related = ["phase__challenge", "dataset__challenge", "training_dataset__challenge"]
