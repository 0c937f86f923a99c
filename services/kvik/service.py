"""The kvik service's use cases on one store, as the app keeps them (``app.state.kvik``): the
routes and the periodic loops reach kiosks, whole and streamed sessions and staff help from here.

Each group lives in its own module (``kiosks``, ``sessions``, ``streaming``, ``help``); what they
share is only the store, the settings and the clock handed in here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from services.kvik.help import Help
from services.kvik.kiosks import Kiosks
from services.kvik.sessions import Sessions
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore
from services.kvik.streaming import StreamedSessions


def utc_now() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


class KvikService:
    """Kiosks, sessions and staff help, on one store."""

    def __init__(
        self,
        store: KvikStore,
        settings: KvikSettings,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.kiosks = Kiosks(store, settings, clock)
        self.sessions = Sessions(store, settings, self.kiosks, clock)
        self.streaming = StreamedSessions(store, settings, clock)
        self.help = Help(store, settings, clock)
