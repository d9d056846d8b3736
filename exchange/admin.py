"""Operators manage partners here: grants, credentials and what each has fetched."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from exchange.delivery import delivery_lag, delivery_redeliver_from, webhook_secret_issue
from exchange.models import Credential, Delivery, ListGrant, Partner, PartnerListState
from exchange.services import PARTNER_KINDS, credentials_revoke, credentials_rotate


class ListGrantInline(admin.TabularInline):
    model = ListGrant
    extra = 0
    fields = ["hash_list", "explicit_confirmation", "granted_at", "granted_by"]
    readonly_fields = ["granted_at", "granted_by"]


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0
    can_delete = False
    fields = ["kind", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PartnerListStateInline(admin.TabularInline):
    model = PartnerListState
    extra = 0
    can_delete = False
    verbose_name_plural = "fetch positions"
    fields = ["hash_list", "last_fetch_at", "last_fetch_position", "log_size", "behind"]
    readonly_fields = fields

    @admin.display(description="log size")
    def log_size(self, obj: PartnerListState) -> int:
        return obj.hash_list.log_size

    @admin.display(description="entries behind")
    def behind(self, obj: PartnerListState) -> int:
        return max(0, obj.hash_list.log_size - obj.last_fetch_position)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    verbose_name_plural = "push deliveries"
    fields = ["hash_list", "acked_position", "lag", "degraded", "last_success_at", "last_error",
              "next_attempt_at"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="lag (entries, seconds)")
    def lag(self, obj: Delivery) -> str:
        entries, seconds = delivery_lag(obj)
        return f"{entries} entries, {seconds:.0f} s"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "granted_lists", "last_fetch", "created_at"]
    list_filter = ["active", "grants__hash_list"]
    search_fields = ["name", "contact_email"]
    inlines = [ListGrantInline, PartnerListStateInline, DeliveryInline, CredentialInline]
    actions = ["rotate_credentials", "rotate_webhook_secret", "revoke_credentials", "deactivate"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Partner]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("grants__hash_list", "list_states__hash_list")
        )

    @admin.display(description="lists")
    def granted_lists(self, obj: Partner) -> str:
        return ", ".join(g.hash_list.slug for g in obj.grants.all() if g.effective) or "—"

    @admin.display(description="last fetch")
    def last_fetch(self, obj: Partner) -> str:
        states = [s for s in obj.list_states.all() if s.last_fetch_at]
        if not states:
            return "never"
        latest = max(states, key=lambda s: s.last_fetch_at)  # type: ignore[arg-type,return-value]
        when = f"{latest.last_fetch_at:%Y-%m-%d %H:%M}"
        return f"{when} ({latest.hash_list.slug} @ {latest.last_fetch_position})"

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is ListGrant:
            for grant in formset.save(commit=False):
                grant.granted_by = request.user
                grant.save()
            for removed in formset.deleted_objects:
                removed.delete()
            formset.save_m2m()
            return
        super().save_formset(request, form, formset, change)

    @admin.action(description="Issue new credentials (revokes the current ones)")
    def rotate_credentials(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse:
        issued = []
        with transaction.atomic():
            for partner in queryset:
                issued.append((partner, credentials_rotate(partner=partner, kinds=PARTNER_KINDS)))
        # Rendered straight into this response: never stored in a message or session.
        return TemplateResponse(
            request,
            "admin/exchange/credentials_issued.html",
            {
                "issued": issued,
                "title": "New partner credentials",
                **self.admin_site.each_context(request),
            },
        )

    @admin.action(description="Issue a new webhook secret (the old one co-signs for 24 h)")
    def rotate_webhook_secret(
        self, request: HttpRequest, queryset: QuerySet[Partner]
    ) -> HttpResponse:
        issued = [
            (partner, {"webhook_secret": webhook_secret_issue(partner=partner)})
            for partner in queryset.exclude(webhook_url="")
        ]
        context = {"issued": issued, "title": "New webhook secrets"}
        response = TemplateResponse(
            request,
            "admin/exchange/credentials_issued.html",
            {**self.admin_site.each_context(request), **context},
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke all credentials")
    def revoke_credentials(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        count = sum(credentials_revoke(partner=p, kinds=PARTNER_KINDS) for p in queryset)
        self.message_user(request, f"Revoked {count} credentials.", messages.WARNING)

    @admin.action(description="Deactivate (stops all access at once)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        self.message_user(request, f"Deactivated {queryset.update(active=False)} partners.")


@admin.register(PartnerListState)
class PartnerListStateAdmin(admin.ModelAdmin):
    list_display = ["partner", "hash_list", "last_fetch_at", "last_fetch_position"]
    list_filter = ["hash_list"]
    readonly_fields = ["partner", "hash_list", "last_fetch_at", "last_fetch_position"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class RedeliverForm(forms.Form):
    index = forms.IntegerField(min_value=0, help_text="Send every entry again from this index.")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["partner", "hash_list", "acked_position", "lag", "degraded",
                    "last_success_at", "short_error"]  # fmt: skip
    list_filter = ["degraded", "hash_list"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["redeliver_from_index"]

    @admin.display(description="lag (entries, seconds)")
    def lag(self, obj: Delivery) -> str:
        entries, seconds = delivery_lag(obj)
        return f"{entries} entries, {seconds:.0f} s"

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str:
        return obj.last_error[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Redeliver from index…")
    def redeliver_from_index(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> HttpResponse | None:
        form = RedeliverForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for delivery in queryset.select_related("hash_list"):
                try:
                    delivery_redeliver_from(delivery=delivery, index=form.cleaned_data["index"])
                    done += 1
                except ValueError as exc:
                    self.message_user(request, f"{delivery}: {exc}", messages.ERROR)
            self.message_user(request, f"{done} deliveries will resend from the given index.")
            return None
        return TemplateResponse(
            request,
            "admin/exchange/redeliver.html",
            {
                **self.admin_site.each_context(request),
                "title": "Redeliver from index",
                "form": form,
                "deliveries": queryset,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )
