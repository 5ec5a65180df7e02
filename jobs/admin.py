from django.contrib import admin

from jobs.models import PendingJob


@admin.register(PendingJob)
class PendingJobAdmin(admin.ModelAdmin):
    list_display = ["key", "target", "attempts", "run_after", "done_at", "failed_at"]
    list_filter = ["target"]
    search_fields = ["key"]
    readonly_fields = ["target", "kwargs", "key", "created_at", "attempts", "last_error", "ran_by"]
