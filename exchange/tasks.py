"""Celery tasks: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task

from exchange.federation import services as federation
from exchange.push import services as delivery


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(delivery_id: int) -> str:
    outcome = delivery.delivery_run(delivery_id=delivery_id)
    if outcome == "more":
        deliver.delay(delivery_id)
    return outcome


@shared_task(ignore_result=True)
def deliveries_sweep() -> int:
    return delivery.deliveries_sweep()


@shared_task(ignore_result=True)
def peers_sync() -> int:
    """Beat: queue a sync of every peer that is due (one task per peer)."""
    due = federation.peers_due()
    for peer_id in due:
        peer_sync.delay(peer_id)
    return len(due)


@shared_task(ignore_result=True)
def peer_sync(peer_id: int) -> str:
    return federation.peer_sync(peer_id=peer_id).status
