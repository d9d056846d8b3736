from django.contrib import admin
from django.http import HttpRequest

from cases.models import Case
from hashbank.models import Hold, HolderKind


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    """Operators see that cases exist and their state, never anything a caller could use.

    The number digest and PIN hash are never shown: together with a leaked key they
    could confirm a guessed case number.
    """

    list_display = ["id", "hash_list", "state", "hash_count", "created_at", "withdrawn_at"]
    list_filter = ["hash_list", "state"]
    date_hierarchy = "created_at"
    fields = ("id", "hash_list", "state", "created_at", "withdrawn_at", "failed_pin_count")
    readonly_fields = fields

    @admin.display(description="hashes")
    def hash_count(self, obj: Case) -> int:
        return Hold.objects.filter(holder_kind=HolderKind.CASE, holder_id=obj.pk).count()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False
