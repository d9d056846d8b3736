"""Push delivery's Celery tasks, and everything that queues them.

``exchange.push.services`` does the work and queues nothing; this module sits
above it. Tasks receive ids and re-read rows. Queuing may fail (broker down)
without losing anything: what is owed is read from the database, and the beat
sweep queues whoever is behind. The task names predate this module and are
kept, so that tasks already queued and the beat schedule in config/settings.py
still find them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from exchange.models import Delivery
from exchange.push import services

logger = logging.getLogger(__name__)


@shared_task(
    name="exchange.tasks.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def deliver(delivery_id: int) -> str:
    outcome = services.delivery_run(delivery_id=delivery_id)
    if outcome == "more":
        deliver.delay(delivery_id)
    elif outcome == "failed":
        _retry_later(delivery_id)
    return outcome


@shared_task(name="exchange.tasks.deliveries_sweep", ignore_result=True)
def deliveries_sweep() -> int:
    """Beat: queue every delivery that is behind and due. Returns how many."""
    due = services.deliveries_due()
    for delivery_id in due:
        deliver.delay(delivery_id)
    return len(due)


def _retry_later(delivery_id: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # in-process mode: the next publish or sweep retries
    try:
        deliver.apply_async((delivery_id,), eta=services.delivery_retry_at(delivery_id=delivery_id))
    except Exception as exc:
        logger.warning("could not schedule retry of delivery %s (%s)", delivery_id, exc)


def deliveries_queue(delivery_ids: Iterable[int]) -> None:
    """Queue a delivery task for each id; if the broker is unreachable, the sweep will."""
    for delivery_id in delivery_ids:
        try:
            deliver.delay(delivery_id)
        except Exception as exc:
            logger.warning("could not queue delivery %s (%s); the sweep will", delivery_id, exc)
            return


def deliveries_kick(*, hash_list_id: int) -> None:
    """Queue a delivery task for every webhook partner of this list that can take one now."""
    deliveries_queue(services.deliveries_to_kick(hash_list_id=hash_list_id))


def log_appended_receiver(sender: Any, hash_list_id: int, **kwargs: Any) -> None:
    """``hashbank.log.log_appended`` is sent once the entries are committed: push them."""
    deliveries_kick(hash_list_id=hash_list_id)


def delivery_redeliver(*, delivery: Delivery, index: int) -> None:
    """Operators: send everything again from ``index``, starting once this commits."""
    services.delivery_redeliver_from(delivery=delivery, index=index)
    transaction.on_commit(lambda: deliveries_queue([delivery.pk]))
