from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Exchange (partners and feeds)"

    def ready(self) -> None:
        # Imported here, not at the top: models may be imported only once apps are loaded.
        from exchange.push.tasks import log_appended_receiver
        from hashbank.log import log_appended

        log_appended.connect(log_appended_receiver, dispatch_uid="exchange-kick-deliveries")
