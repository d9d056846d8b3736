from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from hashbank.models import Hash, HashList, Hold

if TYPE_CHECKING:
    # django-stubs-ext is a dev dependency: only the type checker imports it.
    from django_stubs_ext import WithAnnotations


class _PublishedCount(TypedDict):
    _published: int


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
    def published_count(self, obj: WithAnnotations[HashList, _PublishedCount]) -> int:
        return obj._published

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


VIEW_HASH_VALUE = "hashbank.view_hash_value"
MASKED = "•••• (hidden)"


def hash_values_visible(request: HttpRequest) -> bool:
    """Whether this admin request may see hash values in full.

    Every admin page that shows a hash value asks this, and shows ``MASKED``
    otherwise. No part of the value is shown without the permission: a prefix
    long enough to tell hashes apart is long enough to confirm a guessed file.
    """
    return request.user.has_perm(VIEW_HASH_VALUE)


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
    date_hierarchy = "first_seen"
    fields = [
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

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        if hash_values_visible(request):
            return list(self.list_display)
        return ["masked_value" if f == "short_value" else f for f in self.list_display]

    def get_fields(self, request: HttpRequest, obj: Hash | None = None) -> list[Any]:
        if hash_values_visible(request):
            return list(self.fields)
        return ["masked_value" if f == "value" else f for f in self.fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Hash | None = None) -> list[Any]:
        return self.get_fields(request, obj)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        # Searching by exact value answers "is this file in the bank?": the same
        # question the value itself answers.
        return ["=value"] if hash_values_visible(request) else []

    @admin.display(description="value")
    def short_value(self, obj: Hash) -> str:
        return obj.value[:16] + "…"

    @admin.display(description="value")
    def masked_value(self, obj: Hash) -> str:
        return MASKED

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Hash | None = None) -> bool:
        return False
