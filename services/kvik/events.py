"""What the kvik service reacts to, in one table: event type -> handler.

Will consume registry events to learn which entry and district a kiosk belongs to.
"""

from __future__ import annotations

from services.contracts import EventType
from services.plumbing.consumer import Handler

HANDLERS: dict[EventType, Handler] = {}
