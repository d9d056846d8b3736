from django.apps import AppConfig


class ReviewersConfig(AppConfig):
    name = "reviewers"
    verbose_name = "Reviewers (disputes, decisions, allowlist)"

    def ready(self) -> None:
        # Imported here, not at the top: models may be imported only once apps are loaded.
        from hashbank.services import hash_screener_provide
        from hashbank.signals import hash_feedback_received
        from reviewers.services import allowlist_screen, feedback_received

        # New hashes that match the allowlist are held for review (in the case's transaction).
        hash_screener_provide(allowlist_screen)
        # Partners' not_blocked reports open disputes (in the feedback's transaction).
        hash_feedback_received.connect(feedback_received, dispatch_uid="reviewers-feedback")
