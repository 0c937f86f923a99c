"""iCalendar (RFC 5545) feeds of visits, for Outlook or Google Calendar to subscribe to.

Built with the ``icalendar`` library. Times are written in Europe/Copenhagen with a VTIMEZONE
generated from the tz database for the years the feed spans, so a client shows 10:00 as 10:00
on both sides of a DST change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import icalendar

from services.contracts.geography import COPENHAGEN
from services.mobile.domain import Visit, VisitStatus

PRODID = "-//kanalhub//mobile citizen service//EN"
UID_DOMAIN = "mobile.kanalhub.dk"

_STATUS = {
    VisitStatus.PLANNED: "TENTATIVE",
    VisitStatus.CONFIRMED: "CONFIRMED",
    VisitStatus.IN_PROGRESS: "CONFIRMED",
    VisitStatus.COMPLETED: "CONFIRMED",
    VisitStatus.CANCELLED: "CANCELLED",
}


def ics_feed(name: str, visits: Sequence[Visit], now: dt.datetime) -> bytes:
    """A VCALENDAR with one VEVENT per visit (cancelled ones as STATUS:CANCELLED, so a
    subscribed calendar removes them instead of keeping a stale copy)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Europe/Copenhagen")
    for visit in visits:
        event = icalendar.Event()
        event.add("uid", f"{visit.visit_id}@{UID_DOMAIN}")
        event.add("dtstamp", now.astimezone(dt.UTC))
        event.add("dtstart", visit.starts_at.astimezone(COPENHAGEN))
        event.add("dtend", visit.ends_at.astimezone(COPENHAGEN))
        event.add("summary", f"Mobil borgerservice: {visit.place.name}")
        event.add("location", visit.place.name)
        event.add("geo", (visit.place.latitude, visit.place.longitude))
        event.add("status", _STATUS[visit.status])
        # Clients replace an event by UID when SEQUENCE grows; every saved change raises it.
        event.add("sequence", visit.version - 1)
        event.add("categories", ["mobile citizen service", visit.place.district.display_name])
        event.add(
            "description",
            "Services: "
            + ", ".join(visit.services)
            # Feeds are public (docs/security.md): no staff ids, even pseudonymous ones.
            + f"\nSlots: {visit.slots}; drop-ins {'welcome' if visit.drop_ins else 'no'}",
        )
        cal.add_component(event)
    if visits:
        first = min(v.starts_at for v in visits).astimezone(COPENHAGEN).date()
        last = max(v.ends_at for v in visits).astimezone(COPENHAGEN).date()
        # Only the transitions the feed needs (a year either side), not 1970-2038.
        cal.add_missing_timezones(
            first_date=first - dt.timedelta(days=366), last_date=last + dt.timedelta(days=366)
        )
    feed: bytes = cal.to_ical()
    return feed
