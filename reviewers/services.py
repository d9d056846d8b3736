"""Disputes and decisions: every change a reviewer or operator makes, with its journal entry.

Who may do what is checked here, by permission (the groups are made in
``reviewers/migrations/0002_roles.py``; ``reviewers/roles.py`` lists them), so
admin and anything else that calls these services obey the same roles. The
bank applies the outcome through its one publish rule (``hashbank.services``:
``hash_disable``, ``hash_enable``, ``hash_review_start``, ``hash_review_end``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from hashbank.algorithms import HashValueError, normalise_value
from hashbank.models import Hash, HashList
from hashbank.selectors import hash_feedback
from hashbank.services import hash_disable, hash_enable, hash_review_end, hash_review_start
from reviewers.models import (
    AllowlistEntry,
    Decision,
    DecisionAction,
    Dispute,
    DisputeReason,
    DisputeState,
)
from reviewers.selectors import UNRESOLVED, allowlist_matches, dispute_signals, disputes_cleared
from webapi.errors import Conflict, InvalidInput


class User(Protocol):
    """Who acts: a user of ``django.contrib.auth`` (permissions decide what they may do)."""

    @property
    def pk(self) -> Any: ...
    @property
    def is_active(self) -> bool: ...
    def has_perm(self, perm: str, obj: Any = None) -> bool: ...
    def get_username(self) -> str: ...


NOT_BLOCKED = "not_blocked"


class Writer(Protocol):
    def write(self, text: str, /) -> object: ...


def _require(user: User, permission: str) -> None:
    if not (user.is_active and user.has_perm(f"reviewers.{permission}")):
        raise PermissionDenied(f"needs the permission reviewers.{permission}")


def _reason(reason: str) -> str:
    cleaned = reason.strip()
    if not cleaned:
        raise InvalidInput("Give a reason: it goes into the journal.", field="reason")
    return cleaned


def _journal(
    *,
    user: User,
    hash_id: int,
    action: DecisionAction,
    reason: str,
    dispute: Dispute | None,
    signals: dict[str, Any] | None = None,
) -> Decision:
    if signals is None:
        signals = dispute_signals(dispute=dispute) if dispute is not None else {}
    return Decision.objects.create(
        dispute=dispute,
        hash_id=hash_id,
        action=action,
        user_id=user.pk,
        username=user.get_username(),
        reason=reason,
        # Through JSON once: the snapshot holds plain data only.
        signals=json.loads(json.dumps(signals, cls=DjangoJSONEncoder)),
    )


def _locked(dispute: Dispute, *states: str) -> Dispute:
    locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
    if states and locked.state not in states:
        raise Conflict(
            f"The dispute is {locked.get_state_display()}; this needs it to be "
            + " or ".join(DisputeState(s).label for s in states)
            + ".",
            field="state",
        )
    return locked


def dispute_in_reach(*, user: User, dispute: Dispute) -> bool:
    """Whether ``user``'s role may work this dispute at all: one escalated to an operator
    is taken and decided by an operator (roles.py). Their other permissions still apply."""
    return dispute.state != DisputeState.ESCALATED or user.has_perm("reviewers.decide_escalated")


def _require_for(user: User, dispute: Dispute) -> None:
    if not dispute_in_reach(user=user, dispute=dispute):
        _require(user, "decide_escalated")  # raises, naming the permission


# --- Opening disputes --------------------------------------------------------------------


def _dispute_open(*, hash_id: int, reason: str, detail: dict[str, Any]) -> Dispute | None:
    """Open a dispute unless the hash has an unresolved one already; returns the new one."""
    if Dispute.objects.filter(hash_id=hash_id, state__in=UNRESOLVED).exists():
        return None
    try:
        with transaction.atomic():
            return Dispute.objects.create(hash_id=hash_id, reason=reason, detail=detail)
    except IntegrityError:  # opened concurrently: the other one stands
        return None


def disputes_from_feedback(*, hash_ids: Sequence[int]) -> list[Dispute]:
    """Open a dispute for each hash that at least K distinct partners now report not
    blocked (K = ``HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS``).

    Reports older than the hash's last closed dispute were answered by it, so
    they don't count again. The hash stays published while under review.
    """
    needed = settings.HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS
    # Partners may update their feedback on a hash no longer published: nothing to review.
    hash_ids = list(
        Hash.objects.filter(pk__in=hash_ids, published=True).values_list("pk", flat=True)
    )
    last_closed: dict[int, Any] = {}
    for hash_id, closed_at in Dispute.objects.filter(
        hash_id__in=hash_ids, state=DisputeState.CLOSED
    ).values_list("hash_id", "closed_at"):
        if closed_at and (hash_id not in last_closed or closed_at > last_closed[hash_id]):
            last_closed[hash_id] = closed_at
    opened: list[Dispute] = []
    for hash_id, feedback in hash_feedback(hash_ids=hash_ids).items():
        since = last_closed.get(hash_id)
        partners = sorted(
            f.partner
            for f in feedback
            if f.outcome == NOT_BLOCKED and (since is None or f.updated_at > since)
        )
        if len(partners) < needed:
            continue
        dispute = _dispute_open(
            hash_id=hash_id, reason=DisputeReason.FEEDBACK, detail={"not_blocked_by": partners}
        )
        if dispute is not None:
            hash_review_start(hash_id=hash_id)
            opened.append(dispute)
    return opened


def feedback_received(sender: object, *, hash_ids: Sequence[int], **kwargs: object) -> None:
    """Receiver of ``hashbank.signals.hash_feedback_received`` (``reviewers.apps``)."""
    disputes_from_feedback(hash_ids=hash_ids)


def allowlist_screen(*, hash_list: HashList, hashes: Sequence[Hash]) -> Collection[int]:
    """The bank's screener (``hashbank.services.hash_screener_provide``): hold the new
    hashes that match the allowlist, each with a dispute, until a reviewer decides.

    Runs in the case's transaction under the list lock, so it only writes disputes;
    the bank marks the hashes. A hash a reviewer already kept or re-enabled passes.
    """
    matches = allowlist_matches(hashes=hashes)
    if not matches:
        return set()
    held = set(matches) - disputes_cleared(hash_ids=list(matches))
    for hash_id in sorted(held):
        match = matches[hash_id]
        _dispute_open(
            hash_id=hash_id,
            reason=DisputeReason.ALLOWLIST,
            detail={
                "allowlist_entry": match.entry_id,
                "description": match.description,
                "distance": match.distance,
            },
        )
    return held


def hash_flag(*, user: User, hash: Hash, reason: str) -> Dispute:
    """An operator flags a hash for review. It stays published meanwhile."""
    _require(user, "flag_hash")
    reason = _reason(reason)
    with transaction.atomic():
        dispute = _dispute_open(
            hash_id=hash.pk,
            reason=DisputeReason.FLAG,
            detail={"flagged_by": user.get_username(), "note": reason},
        )
        if dispute is None:
            raise Conflict("This hash is already under review.", field="hash")
        hash_review_start(hash_id=hash.pk)
        _journal(
            user=user, hash_id=hash.pk, action=DecisionAction.FLAG, reason=reason, dispute=dispute
        )
        return dispute


# --- Working a dispute -------------------------------------------------------------------


def dispute_take(*, user: User, dispute: Dispute) -> Dispute:
    """Assign the dispute to ``user``, so that two people don't work on it unknowingly.

    Taking one someone else holds is allowed (people go on holiday); the journal
    shows it.
    """
    _require(user, "take_dispute")
    with transaction.atomic():
        locked = _locked(dispute, *UNRESOLVED)
        _require_for(user, locked)
        previous = locked.assignee.get_username() if locked.assignee else ""
        locked.assignee_id = user.pk
        locked.assigned_at = timezone.now()
        locked.save(update_fields=["assignee", "assigned_at"])
        _journal(
            user=user,
            hash_id=locked.hash_id,
            action=DecisionAction.TAKE,
            reason=f"taken from {previous}" if previous else "",
            dispute=locked,
            signals={},
        )
        return locked


def _close(dispute: Dispute, outcome: str) -> None:
    dispute.state = DisputeState.CLOSED
    dispute.outcome = outcome
    dispute.closed_at = timezone.now()
    dispute.save(update_fields=["state", "outcome", "closed_at"])


def dispute_keep(*, user: User, dispute: Dispute, reason: str) -> Dispute:
    """Keep the hash: the dispute closes; a hash held for review is released (published)."""
    _require(user, "decide_dispute")
    reason = _reason(reason)
    with transaction.atomic():
        locked = _locked(dispute, *UNRESOLVED)
        _require_for(user, locked)
        _journal(
            user=user,
            hash_id=locked.hash_id,
            action=DecisionAction.KEEP,
            reason=reason,
            dispute=locked,
        )
        hash_review_end(hash_id=locked.hash_id)
        _close(locked, "kept")
        return locked


def dispute_disable(*, user: User, dispute: Dispute, reason: str) -> Dispute:
    """Propose disabling the hash. Nothing changes for partners until a second, distinct
    reviewer confirms (``dispute_confirm_disable``)."""
    _require(user, "decide_dispute")
    reason = _reason(reason)
    with transaction.atomic():
        locked = _locked(dispute, DisputeState.OPEN, DisputeState.ESCALATED)
        _require_for(user, locked)
        _journal(
            user=user,
            hash_id=locked.hash_id,
            action=DecisionAction.DISABLE,
            reason=reason,
            dispute=locked,
        )
        locked.state = DisputeState.DISABLE_PROPOSED
        locked.proposed_by_id = user.pk
        locked.save(update_fields=["state", "proposed_by"])
        return locked


def dispute_confirm_disable(*, user: User, dispute: Dispute, reason: str) -> Dispute:
    """Confirm another reviewer's proposal: the bank disables the hash (a ``remove …
    disabled`` entry if it was published, its add redacted) and the dispute closes."""
    _require(user, "confirm_disable")
    reason = _reason(reason)
    with transaction.atomic():
        locked = _locked(dispute, DisputeState.DISABLE_PROPOSED)
        if locked.proposed_by_id == user.pk:
            raise PermissionDenied("a second, different reviewer must confirm a disable")
        _journal(
            user=user,
            hash_id=locked.hash_id,
            action=DecisionAction.CONFIRM_DISABLE,
            reason=reason,
            dispute=locked,
        )
        hash_disable(hash_id=locked.hash_id)
        _close(locked, "disabled")
        return locked


def dispute_escalate(*, user: User, dispute: Dispute, reason: str) -> Dispute:
    """Hand the dispute to an operator: it leaves the reviewer's hands (unassigned), and
    only an operator may take it, keep it or propose disabling it (a reviewer still
    confirms a disable: nobody decides one alone)."""
    _require(user, "decide_dispute")
    reason = _reason(reason)
    with transaction.atomic():
        locked = _locked(dispute, DisputeState.OPEN, DisputeState.DISABLE_PROPOSED)
        _journal(
            user=user,
            hash_id=locked.hash_id,
            action=DecisionAction.ESCALATE,
            reason=reason,
            dispute=locked,
        )
        locked.state = DisputeState.ESCALATED
        locked.assignee = None
        locked.assigned_at = None
        locked.proposed_by = None
        locked.save(update_fields=["state", "assignee", "assigned_at", "proposed_by"])
        return locked


def hash_reenable(*, user: User, dispute: Dispute, reason: str) -> Hash:
    """Undo a confirmed disable: the bank publishes the hash again as a new ``add``
    (while a hold keeps it)."""
    _require(user, "decide_dispute")
    reason = _reason(reason)
    with transaction.atomic():
        locked = _locked(dispute, DisputeState.CLOSED)
        if not Hash.objects.filter(pk=locked.hash_id, disabled=True).exists():
            raise Conflict("This hash is not disabled.", field="hash")
        _journal(
            user=user,
            hash_id=locked.hash_id,
            action=DecisionAction.REENABLE,
            reason=reason,
            dispute=locked,
        )
        locked.outcome = "re-enabled"
        locked.save(update_fields=["outcome"])
        return hash_enable(hash_id=locked.hash_id)


# --- The allowlist and the journal -------------------------------------------------------


@dataclass
class AllowlistLoad:
    """What ``allowlist_load`` found: new entries, ones already present, and errors."""

    added: int = 0
    present: int = 0
    errors: list[str] = field(default_factory=list)


def _allowlist_line(line: str) -> tuple[str, str, str] | None:
    """``[algorithm] value [description]``; the algorithm is guessed from the length when
    absent (64 hex digits: pdq, 32: md5). Blank lines and ``#`` comments give None."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.split(None, 2)
    if parts[0].lower() in ("pdq", "md5"):
        algorithm, rest = parts[0].lower(), parts[1:]
    else:
        algorithm = {64: "pdq", 32: "md5"}.get(len(parts[0]), "pdq")
        rest = parts
    if not rest:
        raise HashValueError("missing_value", "no hash value", "value")
    value = normalise_value(algorithm, rest[0])
    description = " ".join(rest[1:])[:200]
    return algorithm, value, description


def allowlist_load(
    *, user: User | None, lines: Iterable[str], dry_run: bool = False
) -> AllowlistLoad:
    """Add the hashes of a file to the allowlist: all of them, or none if a line is bad.

    Operators (``add_allowlistentry``) only; ``user=None`` is the command line
    (``manage.py allowlist_load``), run by whoever runs the server. With
    ``dry_run`` nothing is saved.
    """
    if user is not None and not (user.is_active and user.has_perm("reviewers.add_allowlistentry")):
        raise PermissionDenied("needs the permission reviewers.add_allowlistentry")
    report = AllowlistLoad()
    wanted: dict[tuple[str, str], str] = {}
    for number, line in enumerate(lines, start=1):
        try:
            parsed = _allowlist_line(line)
        except HashValueError as exc:
            report.errors.append(f"line {number}: {exc.message}")
            continue
        if parsed is not None:
            wanted.setdefault((parsed[0], parsed[1]), parsed[2])
    present = {
        (a, v)
        for a, v in AllowlistEntry.objects.filter(value__in=[v for _, v in wanted]).values_list(
            "algorithm", "value"
        )
    }
    report.present = len(present & wanted.keys())
    new = [key for key in wanted if key not in present]
    report.added = len(new)
    if report.errors or dry_run:
        if report.errors:
            report.added = 0
        return report
    AllowlistEntry.objects.bulk_create(
        [
            AllowlistEntry(
                algorithm=a,
                value=v,
                description=wanted[(a, v)],
                added_by_id=user.pk if user is not None else None,
            )
            for a, v in new
        ],
        ignore_conflicts=True,
    )
    return report


def journal_export(*, user: User, out: Writer, decisions: Iterable[Decision]) -> int:
    """Write decisions as JSON Lines, one object per decision; returns how many."""
    _require(user, "export_journal")
    return journal_write(out=out, decisions=decisions)


def journal_write(*, out: Writer, decisions: Iterable[Decision]) -> int:
    """The export itself (the management command runs as the operating system's user)."""
    count = 0
    for d in decisions:
        record = {
            "id": d.pk,
            "decided_at": d.decided_at.isoformat(),
            "user": d.username,
            "action": d.action,
            "dispute": d.dispute_id,
            "hash": d.hash_id,
            "reason": d.reason,
            "signals": d.signals,
        }
        out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count
