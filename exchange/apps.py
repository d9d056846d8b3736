from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Exchange (partners and feeds)"

    def ready(self) -> None:
        # Imported here, not at the top: models may be imported only once apps are loaded.
        from exchange.push.tasks import log_appended_receiver
        from exchange.selectors import hash_feedback, hash_partner_counts
        from hashbank.log import log_appended
        from hashbank.selectors import feedback_provide, partner_counts_provide

        log_appended.connect(log_appended_receiver, dispatch_uid="exchange-kick-deliveries")
        # Victims see how many partners received and blocked their hashes.
        partner_counts_provide(hash_partner_counts)
        # Reviewers see who said what (hashbank.signals.hash_feedback_received tells them when).
        feedback_provide(hash_feedback)
