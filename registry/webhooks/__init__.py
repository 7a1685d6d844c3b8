"""Webhooks as CNCF Distribution sends them (`notifications.endpoints`), from an outbox table.

`outbox` writes events in the transaction of the change; `dispatcher` delivers them from one
elected replica; `backlog` reports what is still waiting; `events` is the wire format.
"""

from registry.webhooks.backlog import Undelivered, queue_depth, undelivered
from registry.webhooks.dispatcher import Dispatcher, start_dispatcher
from registry.webhooks.events import EVENTS_MEDIA_TYPE
from registry.webhooks.outbox import Outbox

__all__ = [
    "EVENTS_MEDIA_TYPE",
    "Dispatcher",
    "Outbox",
    "Undelivered",
    "queue_depth",
    "start_dispatcher",
    "undelivered",
]
