"""Where Celery's autodiscovery looks (``<app>.tasks``): the tasks of push and federation.

The tasks live with their part, in exchange/push/tasks.py and
exchange/federation/tasks.py; importing them here registers them with every worker.
"""

from exchange.federation.tasks import peer_sync, peers_sync
from exchange.push.tasks import deliver, deliveries_sweep

__all__ = ["deliver", "deliveries_sweep", "peer_sync", "peers_sync"]
