"""What the mobile service reacts to, in one table: event type -> handler.

Will consume registry events to learn sites, districts and opening hours.
"""

from __future__ import annotations

from services.contracts import EventType
from services.plumbing.consumer import Handler

HANDLERS: dict[EventType, Handler] = {}
