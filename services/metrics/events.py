"""What the metrics service reacts to, in one table: event type -> handler.

Will consume every topic and turn events into contacts (DESIGN.md, Counting contacts).
"""

from __future__ import annotations

from services.contracts import EventType
from services.plumbing.consumer import Handler

HANDLERS: dict[EventType, Handler] = {}
