"""Celery names: queued tasks and the beat schedule find exchange's tasks wherever they live."""

from __future__ import annotations

from config.celery import app

TASK_NAMES = {
    "exchange.tasks.deliver",
    "exchange.tasks.deliveries_sweep",
    "exchange.tasks.peers_sync",
    "exchange.tasks.peer_sync",
}


def test_a_worker_discovers_every_exchange_task_under_its_name():
    app.loader.import_default_modules()  # what a worker does at start-up
    assert TASK_NAMES <= set(app.tasks)


def test_every_beat_schedule_entry_names_a_registered_task(settings):
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
