"""Federation's Celery tasks: thin wrappers that take ids and call exchange.federation.services.

The task names predate this module and are kept, so that queued tasks and the
beat schedule in config/settings.py still find them.
"""

from __future__ import annotations

from celery import shared_task

from exchange.federation import services


@shared_task(name="exchange.tasks.peers_sync", ignore_result=True)
def peers_sync() -> int:
    """Beat: queue a sync of every peer that is due (one task per peer)."""
    due = services.peers_due()
    for peer_id in due:
        peer_sync.delay(peer_id)
    return len(due)


@shared_task(name="exchange.tasks.peer_sync", ignore_result=True)
def peer_sync(peer_id: int) -> str:
    return services.peer_sync(peer_id=peer_id).status
