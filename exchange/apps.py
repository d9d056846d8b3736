from typing import Any

from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Exchange (partners and feeds)"

    def ready(self) -> None:
        from exchange.selectors import hash_partner_counts
        from hashbank.log import log_appended
        from hashbank.selectors import partner_counts_provide

        log_appended.connect(_kick_deliveries, dispatch_uid="exchange-kick-deliveries")
        # Victims see how many partners received and blocked their hashes.
        partner_counts_provide(hash_partner_counts)


def _kick_deliveries(sender: Any, hash_list_id: int, **kwargs: Any) -> None:
    from exchange.delivery import deliveries_kick

    deliveries_kick(hash_list_id=hash_list_id)
