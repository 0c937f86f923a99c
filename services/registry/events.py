"""What the registry service reacts to, in one table: event type -> handler.

Nothing yet: the registry is the source of sites and entries and consumes no events.
"""

from __future__ import annotations

from services.contracts import EventType
from services.plumbing.consumer import Handler

HANDLERS: dict[EventType, Handler] = {}
