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
import os
import threading
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


class _Publisher:
    """Queues ``deliver`` tasks from a thread of its own.

    A publish happens inside a victim's request (on commit of the case), and a
    broker that is down, or up but not answering, must not hold that request
    up: the request only hands the ids over. If the broker can't take them, the
    ids are dropped, logged once per outage, and the beat sweep queues whoever
    is behind once the broker is back (the outbox is the database).
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # threads don't survive a fork

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, None] = {}  # an ordered set of delivery ids
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._broker_down = False

    def submit(self, delivery_ids: Iterable[int]) -> None:
        with self._lock:
            self._pending.update(dict.fromkeys(delivery_ids))
            if not self._pending:
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="hashbank-deliveries-queue", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                delivery_ids, self._pending = list(self._pending), {}
            self._publish(delivery_ids)

    def _publish(self, delivery_ids: list[int]) -> None:
        for delivery_id in delivery_ids:
            try:
                deliver.delay(delivery_id)
            except Exception as exc:
                if not self._broker_down:
                    self._broker_down = True
                    logger.warning(
                        "could not queue deliveries (%s: %s); the sweep will once the broker "
                        "is back",
                        type(exc).__name__,
                        exc,
                    )
                return  # the rest would fail the same way; the sweep queues them
        if self._broker_down:
            self._broker_down = False
            logger.warning("the broker takes deliveries again")


_publisher = _Publisher()


def deliveries_queue(delivery_ids: Iterable[int]) -> None:
    """Queue a delivery task for each id, without waiting for the broker.

    Without a broker (development), tasks run here and now, in order.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        for delivery_id in delivery_ids:
            try:
                deliver.delay(delivery_id)
            except Exception:
                logger.exception("delivery %s failed; the next publish retries it", delivery_id)
                return
        return
    _publisher.submit(delivery_ids)


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
