from typing import Any

from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Exchange (partners and feeds)"

    def ready(self) -> None:
        from hashbank.log import log_appended

        log_appended.connect(_kick_deliveries, dispatch_uid="exchange-kick-deliveries")


def _kick_deliveries(sender: Any, hash_list_id: int, **kwargs: Any) -> None:
    from exchange.push.services import deliveries_kick

    deliveries_kick(hash_list_id=hash_list_id)
