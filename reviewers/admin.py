"""Reviewers work in Django admin: the dispute queue, a dispute's page and its decisions,
the journal (read-only, exported as JSON Lines) and the allowlist.

Every change goes through ``reviewers.services``, which checks the user's
permissions (``reviewers/roles.py``); admin's own save and delete are off for
disputes and decisions.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from hashbank.admin import hash_values_visible
from hashbank.algorithms import ALGORITHMS, HashValueError, normalise_value
from hashbank.models import Hash, HashList
from reviewers import selectors, services
from reviewers.models import AllowlistEntry, Decision, Dispute, DisputeState
from webapi.errors import DomainError


def _actor(request: HttpRequest) -> services.User:
    """The signed-in user; admin_view let only active staff this far."""
    return cast(services.User, request.user)


class QueueFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("all", "All"),
            *[(s.value, str(s.label)) for s in DisputeState],
        ]

    def choices(self, changelist: Any) -> Any:
        # "Unresolved" is the default (no parameter), not "All".
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Unresolved",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset.filter(state__in=selectors.UNRESOLVED)
        if value == "all":
            return queryset
        return queryset.filter(state=value)


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    _DAYS = {"1d": 1, "7d": 7, "30d": 30}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("1d", "Older than a day"),
            ("7d", "Older than a week"),
            ("30d", "Older than 30 days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        days = self._DAYS.get(self.value() or "")
        if days is None:
            return queryset
        return queryset.filter(opened_at__lt=timezone.now() - timedelta(days=days))


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        people = (
            Dispute.objects.exclude(assignee=None)
            .values_list("assignee_id", "assignee__username")
            .distinct()
            .order_by("assignee__username")
        )
        return [("me", "Me"), ("none", "Nobody"), *[(str(pk), name) for pk, name in people]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "me":
            return queryset.filter(assignee_id=request.user.pk)
        if value == "none":
            return queryset.filter(assignee=None)
        if value and value.isdigit():
            return queryset.filter(assignee_id=int(value))
        return queryset


class FlagForm(forms.Form):
    hash_list = forms.ModelChoiceField(queryset=HashList.objects.all(), label="List")
    algorithm = forms.ChoiceField(choices=[(a, a) for a in sorted(ALGORITHMS)])
    value = forms.CharField(max_length=512)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "value" in data and "algorithm" in data and "hash_list" in data:
            try:
                value = normalise_value(data["algorithm"], data["value"])
            except HashValueError as exc:
                raise forms.ValidationError({"value": exc.message}) from None
            found = Hash.objects.filter(
                hash_list=data["hash_list"], algorithm=data["algorithm"], value=value
            ).first()
            if found is None:
                raise forms.ValidationError({"value": "No such hash in this list."})
            data["hash"] = found
        return data


_DECISIONS = {
    "keep": (services.dispute_keep, "decide_dispute", "Kept: the dispute is closed."),
    "disable": (
        services.dispute_disable,
        "decide_dispute",
        "Disable proposed: a second reviewer must confirm it.",
    ),
    "confirm_disable": (
        services.dispute_confirm_disable,
        "confirm_disable",
        "Disabled: partners receive the removal.",
    ),
    "escalate": (services.dispute_escalate, "decide_dispute", "Escalated to an operator."),
    "reenable": (services.hash_reenable, "decide_dispute", "Re-enabled: published again."),
}

_LABELS = {
    "keep": "Keep (close the dispute)",
    "disable": "Propose disable",
    "confirm_disable": "Confirm disable",
    "escalate": "Escalate to an operator",
    "reenable": "Re-enable",
}


def _decisions_for(request: HttpRequest, dispute: Dispute, hash_disabled: bool) -> list[str]:
    """The decision buttons this user may use on this dispute now."""
    user = request.user
    possible = {
        DisputeState.OPEN: ["keep", "disable", "escalate"],
        DisputeState.ESCALATED: ["keep", "disable"],
        DisputeState.DISABLE_PROPOSED: ["confirm_disable", "keep", "escalate"],
        DisputeState.CLOSED: ["reenable"] if hash_disabled else [],
    }[DisputeState(dispute.state)]
    if not services.dispute_in_reach(user=user, dispute=dispute):
        return []
    allowed = [a for a in possible if user.has_perm(f"reviewers.{_DECISIONS[a][1]}")]
    if dispute.proposed_by_id == user.pk and "confirm_disable" in allowed:
        allowed.remove("confirm_disable")
    return allowed


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    list_display = ["id", "short_hash", "hash_list", "reason", "state", "age", "assignee"]
    list_filter = [
        QueueFilter,
        ("hash__hash_list", admin.RelatedOnlyFieldListFilter),
        "reason",
        AgeFilter,
        AssigneeFilter,
    ]
    ordering = ["opened_at", "pk"]
    list_select_related = ["hash", "hash__hash_list", "assignee"]
    actions = ["take"]
    fields = readonly_fields = (
        "hash",
        "reason",
        "state",
        "detail",
        "opened_at",
        "assignee",
        "assigned_at",
        "proposed_by",
        "closed_at",
        "outcome",
    )
    change_form_template = "admin/reviewers/dispute/change_form.html"

    @admin.display(description="hash")
    def short_hash(self, obj: Dispute) -> str:
        # No part of the value in the queue: it is for who may see values (the dispute page).
        return f"{obj.hash.algorithm} #{obj.hash_id}"

    @admin.display(description="list", ordering="hash__hash_list__slug")
    def hash_list(self, obj: Dispute) -> str:
        return obj.hash.hash_list.slug

    @admin.display(description="age", ordering="opened_at")
    def age(self, obj: Dispute) -> str:
        delta = timezone.now() - obj.opened_at
        return f"{delta.days} d" if delta.days else f"{delta.seconds // 3600} h"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("reviewers.flag_hash")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_take_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("reviewers.take_dispute")

    @admin.action(description="Take the selected disputes", permissions=["take"])
    def take(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        taken = 0
        for dispute in queryset.filter(state__in=selectors.UNRESOLVED):
            services.dispute_take(user=_actor(request), dispute=dispute)
            taken += 1
        self.message_user(request, f"You took {taken} dispute(s).", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="reviewers_dispute_decide",
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """Flag a hash: the operator's way to open a dispute."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = FlagForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                dispute = services.hash_flag(
                    user=_actor(request),
                    hash=form.cleaned_data["hash"],
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, "Flagged: the hash is under review.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:reviewers_dispute_change", args=[dispute.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Flag a hash for review",
            "form": form,
        }
        return TemplateResponse(request, "admin/reviewers/dispute/flag.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        dispute = get_object_or_404(Dispute, pk=object_id)
        if not self.has_view_permission(request, dispute):
            raise PermissionDenied
        signals = selectors.dispute_signals(dispute=dispute)
        extra = {
            **(extra_context or {}),
            "signals": signals,
            "hash_values_visible": hash_values_visible(request),
            "history": selectors.hash_history(hash_id=dispute.hash_id),
            "decisions": [
                (a, _LABELS[a])
                for a in _decisions_for(
                    request, dispute, hash_disabled=signals["hash"]["state"] == "disabled"
                )
            ],
            "can_take": dispute.state in selectors.UNRESOLVED
            and request.user.has_perm("reviewers.take_dispute")
            and services.dispute_in_reach(user=request.user, dispute=dispute)
            and dispute.assignee_id != request.user.pk,
            "decide_url": reverse("admin:reviewers_dispute_decide", args=[dispute.pk]),
        }
        return super().change_view(request, object_id, form_url, extra)

    def decide_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        dispute = get_object_or_404(Dispute, pk=object_id)
        back = HttpResponseRedirect(reverse("admin:reviewers_dispute_change", args=[object_id]))
        if request.method != "POST":
            return back
        action = request.POST.get("action", "")
        reason = request.POST.get("reason", "")
        try:
            if action == "take":
                services.dispute_take(user=_actor(request), dispute=dispute)
                done = "You took this dispute."
            elif action in _DECISIONS:
                service, _, done = _DECISIONS[action]
                service(user=_actor(request), dispute=dispute, reason=reason)
            else:
                self.message_user(request, "Unknown decision.", messages.ERROR)
                return back
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return back
        self.message_user(request, done, messages.SUCCESS)
        return back


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    """The journal: read-only for everyone; exported as JSON Lines."""

    list_display = ["decided_at", "username", "action", "dispute", "hash", "short_reason"]
    list_filter = ["action", "username"]
    ordering = ["-decided_at", "-pk"]
    actions = ["export_jsonl"]
    fields = readonly_fields = (
        "decided_at",
        "username",
        "action",
        "dispute",
        "hash",
        "reason",
        "signals",
    )

    @admin.display(description="reason")
    def short_reason(self, obj: Decision) -> str:
        return obj.reason[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_export_journal_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("reviewers.export_journal")

    @admin.action(
        description="Export the selected decisions (JSON Lines)", permissions=["export_journal"]
    )
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[Decision]) -> HttpResponse:
        out = io.StringIO()
        services.journal_export(
            user=_actor(request), out=out, decisions=queryset.order_by("decided_at", "pk")
        )
        response = HttpResponse(out.getvalue(), content_type="application/jsonl; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="journal.jsonl"'
        return response


class AllowlistEntryForm(forms.ModelForm):
    algorithm = forms.ChoiceField(choices=[(a, a) for a in sorted(ALGORITHMS)])

    class Meta:
        model = AllowlistEntry
        fields = ["algorithm", "value", "description"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "algorithm" in data and "value" in data:
            try:
                data["value"] = normalise_value(data["algorithm"], data["value"].strip())
            except HashValueError as exc:
                raise forms.ValidationError({"value": exc.message}) from None
            if AllowlistEntry.objects.filter(
                algorithm=data["algorithm"], value=data["value"]
            ).exists():
                raise forms.ValidationError({"value": "Already on the allowlist."})
        return data


class AllowlistLoadForm(forms.Form):
    file = forms.FileField(
        help_text="One hash a line: [pdq|md5] value [description]; # starts a comment."
    )
    dry_run = forms.BooleanField(required=False, help_text="Check the file, save nothing.")


@admin.register(AllowlistEntry)
class AllowlistEntryAdmin(admin.ModelAdmin):
    """Entries are added (one by one or from a file) and deleted, never edited."""

    form = AllowlistEntryForm
    list_display = ["algorithm", "value", "description", "added_at", "added_by"]
    list_filter = ["algorithm"]
    search_fields = ["=value", "description"]
    change_list_template = "admin/reviewers/allowlistentry/change_list.html"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: AllowlistEntry, form: Any, change: bool
    ) -> None:
        obj.added_by_id = request.user.pk
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "load/",
                self.admin_site.admin_view(self.load_view),
                name="reviewers_allowlistentry_load",
            ),
            *super().get_urls(),
        ]

    def load_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = AllowlistLoadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            text = form.cleaned_data["file"].read().decode("utf-8", errors="replace")
            report = services.allowlist_load(
                user=_actor(request), lines=text.splitlines(), dry_run=form.cleaned_data["dry_run"]
            )
            if report.errors:
                for error in report.errors[:20]:
                    form.add_error("file", error)
            else:
                verb = "Would add" if form.cleaned_data["dry_run"] else "Added"
                self.message_user(
                    request,
                    f"{verb} {report.added} entries; {report.present} were already present.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:reviewers_allowlistentry_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Load allowlist hashes from a file",
            "form": form,
        }
        return TemplateResponse(request, "admin/reviewers/allowlistentry/load.html", context)
