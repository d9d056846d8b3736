from typing import Any

from django.apps import AppConfig


def _list_access_after_partner_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    from exchange.services import list_access_refresh

    list_access_refresh(partner_id=instance.pk)


def _list_access_after_grant_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    from exchange.services import list_access_refresh

    list_access_refresh(partner_id=instance.partner_id)


def _list_access_after_list_save(
    sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any
) -> None:
    # Saves that leave the flag alone (update_fields without it) change no one's access.
    if update_fields is not None and "requires_explicit_grant" not in update_fields:
        return
    from exchange.models import ListGrant
    from exchange.services import list_access_refresh

    for partner_id in ListGrant.objects.filter(hash_list=instance).values_list(
        "partner_id", flat=True
    ):
        list_access_refresh(partner_id=partner_id)


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Exchange (partners and feeds)"

    def ready(self) -> None:
        # Imported here, not at the top: models may be imported only once apps are loaded.
        from django.db.models.signals import post_delete, post_save

        from exchange.models import ListGrant, Partner
        from exchange.push.tasks import log_appended_receiver
        from exchange.selectors import hash_feedback, hash_partner_counts
        from hashbank.log import log_appended
        from hashbank.models import HashList
        from hashbank.selectors import feedback_provide, partner_counts_provide

        log_appended.connect(log_appended_receiver, dispatch_uid="exchange-kick-deliveries")
        # Victims see how many partners received and blocked their hashes.
        partner_counts_provide(hash_partner_counts)
        # Every save of a partner and every save or deletion of a grant (admin
        # inlines included), and a list's change of requires_explicit_grant,
        # keep the partners' list access history in step, in the same
        # transaction; StopNCII's FetchHashes relies on it.
        post_save.connect(
            _list_access_after_partner_save, sender=Partner, dispatch_uid="exchange-access-p"
        )
        post_save.connect(
            _list_access_after_grant_change, sender=ListGrant, dispatch_uid="exchange-access-g"
        )
        post_delete.connect(
            _list_access_after_grant_change, sender=ListGrant, dispatch_uid="exchange-access-d"
        )
        post_save.connect(
            _list_access_after_list_save, sender=HashList, dispatch_uid="exchange-access-l"
        )
        # Reviewers see who said what (hashbank.signals.hash_feedback_received tells them when).
        feedback_provide(hash_feedback)
