from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from hashbank.models import Hash, HashList, Hold


@admin.register(HashList)
class HashListAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "requires_explicit_grant", "published_count", "created_at"]
    readonly_fields = ["created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: HashList | None = None) -> list[str]:
        # The slug names the list in its log's signed checkpoints and in partners'
        # URLs, and is remembered by the server: it never changes once made.
        return [*self.readonly_fields, "slug"] if obj is not None else list(self.readonly_fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[HashList]:
        return (
            super()
            .get_queryset(request)
            .annotate(_published=Count("hashes", filter=Q(hashes__published=True)))
        )

    @admin.display(description="published hashes", ordering="_published")
    def published_count(self, obj: HashList) -> int:
        return obj._published  # type: ignore[attr-defined]

    def has_delete_permission(self, request: HttpRequest, obj: HashList | None = None) -> bool:
        return False


class HoldInline(admin.TabularInline):
    model = Hold
    extra = 0
    can_delete = False
    fields = ["holder", "active", "created_at", "released_at"]
    readonly_fields = ["holder", "active", "created_at", "released_at"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Hash)
class HashAdmin(admin.ModelAdmin):
    list_display = [
        "short_value",
        "hash_list",
        "algorithm",
        "quality",
        "published",
        "disabled",
        "first_seen",
    ]
    list_filter = [
        "hash_list",
        "algorithm",
        "published",
        "disabled",
        "under_review",
        "review_hold",
    ]
    search_fields = ["=value"]
    date_hierarchy = "first_seen"
    readonly_fields = [
        "hash_list",
        "algorithm",
        "value",
        "quality",
        "first_seen",
        "published",
        "disabled",
        "under_review",
        "review_hold",
        "changed_at",
    ]
    inlines = [HoldInline]

    @admin.display(description="value")
    def short_value(self, obj: Hash) -> str:
        return obj.value[:16] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Hash | None = None) -> bool:
        return False
