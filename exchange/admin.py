"""Operators manage partners here (grants, credentials, what each has fetched) and peers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models, transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html

from exchange.federation import services as federation
from exchange.federation.tasks import peer_sync
from exchange.models import Credential, Delivery, ListGrant, Partner, PartnerListState, Peer
from exchange.push.services import delivery_lag, webhook_secret_issue, webhook_url_check
from exchange.push.tasks import delivery_redeliver
from exchange.services import PARTNER_KINDS, credentials_revoke, credentials_rotate
from hashbank import tlog
from webapi.errors import DomainError


class ListGrantInline(admin.TabularInline):
    model = ListGrant
    extra = 0
    fields = ["hash_list", "explicit_confirmation", "granted_at", "granted_by", "granted_log_size"]
    readonly_fields = ["granted_at", "granted_by", "granted_log_size"]


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "hint", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PartnerListStateInline(admin.TabularInline):
    model = PartnerListState
    extra = 0
    can_delete = False
    verbose_name_plural = "fetch positions"
    readonly_fields = ("hash_list", "last_fetch_at", "last_fetch_position", "log_size", "behind")
    fields = readonly_fields

    @admin.display(description="log size")
    def log_size(self, obj: PartnerListState) -> int:
        return obj.hash_list.log_size

    @admin.display(description="entries behind")
    def behind(self, obj: PartnerListState) -> int:
        return max(0, obj.hash_list.log_size - obj.last_fetch_position)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _lag_text(delivery: Delivery) -> str:
    entries, seconds = delivery_lag(delivery)
    return f"{entries} entries, {seconds:.0f} s"


def _secrets_page(
    admin_site: admin.AdminSite, request: HttpRequest, issued: list[Any], title: str
) -> HttpResponse:
    """Secrets rendered straight into this response: never stored in a message or session."""
    response = TemplateResponse(
        request,
        "admin/exchange/credentials_issued.html",
        {**admin_site.each_context(request), "issued": issued, "title": title},
    )
    response["Cache-Control"] = "no-store"
    return response


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    verbose_name_plural = "push deliveries"
    readonly_fields = ("hash_list", "acked_position", "lag", "degraded", "last_success_at",
                       "last_error", "next_attempt_at")  # fmt: skip
    fields = readonly_fields

    @admin.display(description="lag (entries, seconds)")
    def lag(self, obj: Delivery) -> str:
        return _lag_text(obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PartnerForm(forms.ModelForm):
    """A webhook URL typed here obeys the rule ``partner_webhook`` applies (https only)."""

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data["webhook_url"]
        if url:
            try:
                webhook_url_check(url)
            except DomainError as exc:
                raise forms.ValidationError(exc.message) from None
        return url


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    form = PartnerForm
    list_display = ["name", "active", "granted_lists", "last_fetch", "created_at"]
    list_filter = ["active", "grants__hash_list"]
    search_fields = ["name", "contact_email"]
    inlines = [ListGrantInline, PartnerListStateInline, DeliveryInline, CredentialInline]
    actions = ["rotate_credentials", "rotate_webhook_secret", "replace_webhook_secret",
               "revoke_credentials", "deactivate"]  # fmt: skip
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
        fetched = [(s.last_fetch_at, s) for s in obj.list_states.all() if s.last_fetch_at]
        if not fetched:
            return "never"
        when, latest = max(fetched, key=lambda pair: pair[0])
        return f"{when:%Y-%m-%d %H:%M} ({latest.hash_list.slug} @ {latest.last_fetch_position})"

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

    @admin.action(
        description="Issue new credentials (revokes the current ones)", permissions=["change"]
    )
    def rotate_credentials(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse:
        issued = []
        with transaction.atomic():
            for partner in queryset:
                issued.append((partner, credentials_rotate(partner=partner, kinds=PARTNER_KINDS)))
        return _secrets_page(self.admin_site, request, issued, "New partner credentials")

    @admin.action(
        description="Issue a new webhook secret (the old one co-signs for 24 h)",
        permissions=["change"],
    )
    def rotate_webhook_secret(
        self, request: HttpRequest, queryset: QuerySet[Partner]
    ) -> HttpResponse:
        issued = [
            (partner, {"webhook_secret": webhook_secret_issue(partner=partner)})
            for partner in queryset.exclude(webhook_url="")
        ]
        return _secrets_page(self.admin_site, request, issued, "New webhook secrets")

    @admin.action(
        description="Replace the webhook secret at once (after a compromise)",
        permissions=["change"],
    )
    def replace_webhook_secret(
        self, request: HttpRequest, queryset: QuerySet[Partner]
    ) -> HttpResponse:
        issued = []
        for partner in queryset.exclude(webhook_url=""):
            secret = webhook_secret_issue(partner=partner, revoke_previous=True)
            issued.append((partner, {"webhook_secret": secret}))
        return _secrets_page(
            self.admin_site, request, issued, "New webhook secrets (the old ones no longer sign)"
        )

    @admin.action(description="Revoke all credentials", permissions=["change"])
    def revoke_credentials(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        count = sum(credentials_revoke(partner=p, kinds=PARTNER_KINDS) for p in queryset)
        self.message_user(request, f"Revoked {count} credentials.", messages.WARNING)

    @admin.action(description="Deactivate (stops all access at once)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Partner]) -> None:
        # Saved one by one, not queryset.update(): each save closes the partner's
        # list access periods (exchange.services.list_access_refresh).
        with transaction.atomic():
            partners = list(queryset.filter(active=True).select_for_update())
            for partner in partners:
                partner.active = False
                partner.save(update_fields=["active"])
        self.message_user(request, f"Deactivated {len(partners)} partners.")


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
        return _lag_text(obj)

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str:
        return obj.last_error[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Redeliver from index…", permissions=["change"])
    def redeliver_from_index(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> HttpResponse | None:
        form = RedeliverForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for delivery in queryset.select_related("hash_list"):
                try:
                    delivery_redeliver(delivery=delivery, index=form.cleaned_data["index"])
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
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


class PeerForm(forms.ModelForm):
    """Peers are validated like ``peer_add``; the token is write-only (stored sealed)."""

    base_url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text="The peer bank, e.g. https://bank.example.org",
    )
    token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="The bearer token the peer issued to this bank. Leave empty to keep the "
        "current one. Never shown again.",
    )

    class Meta:
        model = Peer
        fields = ["name", "base_url", "remote_list", "vkeys", "local_list", "active"]
        widgets = {"vkeys": forms.Textarea(attrs={"rows": 3, "cols": 100})}

    def clean_base_url(self) -> str:
        return self._domain(federation.peer_base_url_check, self.cleaned_data["base_url"])

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        remote_list = data.get("remote_list") or self.instance.remote_list
        if data.get("vkeys") and remote_list:
            keys = self._domain(
                lambda v: federation.peer_vkeys_check(v.splitlines(), remote_list=remote_list),
                data["vkeys"],
                field="vkeys",
            )
            if keys is not None:
                if self.instance.pk and self.instance.size:
                    old = federation.peer_origin(self.instance)
                    if tlog.parse_vkey(keys[0]).name != old:
                        self.add_error("vkeys", f"The keys must stay those of {old}.")
                data["vkeys"] = "\n".join(keys)
        if not self.instance.pk and not data.get("token"):
            self.add_error("token", "The peer's token is needed.")
        return data

    def _domain(self, check: Any, value: Any, field: str | None = None) -> Any:
        try:
            return check(value)
        except DomainError as exc:
            if field is None:
                raise forms.ValidationError(exc.message) from None
            self.add_error(field, exc.message)
            return None


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    """Peer banks this bank imports from; a stopped import is shown as an alert."""

    form = PeerForm
    list_display = ["name", "status", "remote", "local_list", "size", "imported",
                    "last_success_at", "short_error"]  # fmt: skip
    list_filter = ["stopped", "active", "local_list"]
    search_fields = ["name", "base_url"]
    actions = ["sync_now", "resume", "unpublish_imports", "unsubscribe"]
    readonly_fields = ["alert_box", "origin", "size", "root", "imported", "last_sync_at",
                       "last_success_at", "last_error", "checkpoint", "created_at"]  # fmt: skip
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        subscription = ["name", "base_url", "remote_list", "vkeys", "local_list", "token",
                        "active"]  # fmt: skip
        if obj is None:
            return [(None, {"fields": subscription})]
        state = ["origin", "size", "root", "imported", "last_sync_at", "last_success_at",
                 "last_error", "checkpoint", "created_at"]  # fmt: skip
        return [
            (None, {"fields": ["alert_box"]}),
            ("Subscription", {"fields": subscription}),
            ("Verified state", {"fields": state}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        # Another list or log would not extend the verified state: add a new peer instead.
        return [*self.readonly_fields, "remote_list", "local_list"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Peer]:
        return (
            super()
            .get_queryset(request)
            .select_related("local_list")
            .annotate(imported_count=Count("entries", filter=Q(entries__hash__isnull=False)))
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        stopped = Peer.objects.filter(stopped=True, active=True).annotate(
            imported_count=Count("entries", filter=Q(entries__hash__isnull=False))
        )
        for peer in stopped:
            held = (
                f" {peer.imported_count} hashes it imported stay published while it is "
                "stopped: its removals can't arrive."
                if peer.imported_count
                else ""
            )
            self.message_user(request, f"Peer {peer.name}: {peer.alert}{held}", messages.ERROR)
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: Peer, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("token"):
            federation.peer_token_set(peer=obj, token=form.cleaned_data["token"])

    @admin.display(description="status")
    def status(self, obj: Peer) -> str:
        if obj.stopped:
            return format_html('<strong style="color:#ba2121">{}</strong>', "STOPPED")
        if not obj.active:
            return "inactive"
        if obj.last_error:
            return format_html('<span style="color:#b36b00">{}</span>', "retrying")
        return "ok" if obj.last_success_at else "not synced yet"

    @admin.display(description="alert")
    def alert_box(self, obj: Peer) -> str:
        if obj.stopped:
            return format_html(
                '<div style="color:#ba2121;font-weight:bold;white-space:pre-wrap">{}</div>',
                obj.alert,
            )
        return "none: the import runs" if obj.active else "none (inactive)"

    @admin.display(description="peer list")
    def remote(self, obj: Peer) -> str:
        return f"{obj.base_url} · {obj.remote_list}"

    @admin.display(description="origin")
    def origin(self, obj: Peer) -> str:
        return federation.peer_origin(obj)

    @admin.display(description="imported hashes")
    def imported(self, obj: Peer) -> int:
        count = getattr(obj, "imported_count", None)
        if count is None:
            count = obj.entries.filter(hash__isnull=False).count()
        return int(count)

    @admin.display(description="last error")
    def short_error(self, obj: Peer) -> str:
        return obj.last_error[:80]

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Peer]) -> None:
        for peer in queryset:
            if not settings.CELERY_TASK_ALWAYS_EAGER:
                peer_sync.delay(peer.pk)
                self.message_user(request, f"{peer.name}: sync queued.")
                continue
            result = federation.peer_sync(peer_id=peer.pk)
            level = messages.ERROR if result.failed else messages.INFO
            detail = f" {result.message}" if result.message else ""
            self.message_user(
                request,
                f"{peer.name}: {result.status}, size {result.size}, {result.imported} imported, "
                f"{result.removed} removed.{detail}",
                level,
            )

    @admin.action(description="Resume after checking why it stopped", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Peer]) -> None:
        resumed = [p.name for p in queryset if federation.peer_resume(peer_id=p.pk)]
        self.message_user(
            request,
            f"Resumed: {', '.join(resumed)}. They sync at the next beat, or use “Sync now”."
            if resumed
            else "None of these peers was stopped.",
        )

    @admin.action(
        description="Unpublish what it imported (when stopped with removals pending)…",
        permissions=["change"],
    )
    def unpublish_imports(
        self, request: HttpRequest, queryset: QuerySet[Peer]
    ) -> HttpResponse | None:
        if "confirm" in request.POST:
            for peer in queryset:
                released = federation.peer_imports_unpublish(peer_id=peer.pk)
                self.message_user(
                    request, f"{peer.name}: {released} hashes unpublished; it stays stopped."
                )
            return None
        chosen = self.get_queryset(request).filter(pk__in=queryset.values("pk"))
        return TemplateResponse(
            request,
            "admin/exchange/peer_unpublish.html",
            {
                **self.admin_site.each_context(request),
                "title": "Unpublish what these peers imported?",
                "peers": [(peer, self.imported(peer)) for peer in chosen],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(
        description="Unsubscribe: unpublish what only this peer kept, and deactivate",
        permissions=["change"],
    )
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet[Peer]) -> None:
        for peer in queryset:
            released = federation.peer_unsubscribe(peer_id=peer.pk)
            self.message_user(request, f"{peer.name}: unsubscribed, {released} hashes released.")
