"""Secret subscribe addresses of staff calendars: capability URLs, as calendar services give out
secret iCal addresses.

A staff member's calendar says where that person will be and when - for staff working alone at
a mobile visit, a safety matter - yet calendar apps subscribe without a token. So the feed is
served only with ``?key=<k>``, where ``k`` is an HMAC-SHA256 of the staff id and the staff
member's link generation; a wrong or missing key is answered like an unknown address (404),
so the feed never confirms that a staff id exists. Rotating the link (a new generation in
Redis, :meth:`services.mobile.store.MobileStore.rotate_calendar_link`) makes every earlier
address 404 at once; nothing else has to be stored or revoked.

The HMAC key is derived from the subject key (``KANALHUB_SUBJECT_KEY``, which production
already refuses to run without, strong) for one purpose only, so the link keys and the
pseudonymous ids (:mod:`services.plumbing.pseudonyms`) are unrelated values: knowing one
tells nothing about the other, and one secret fewer has to be generated, distributed and
checked. Changing the subject key changes every link (as it changes every pseudonymous id);
it is meant to stay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final
from urllib.parse import urlencode

from pydantic import BaseModel, SecretStr

_PURPOSE: Final = b"kanalhub/mobile/staff-calendar-link/v1"
"""Domain separation: the derived key is used for calendar links and nothing else."""


def link_signing_key(subject_key: SecretStr) -> bytes:
    """The key calendar links are signed with, derived from the subject key."""
    return hmac.new(subject_key.get_secret_value().encode(), _PURPOSE, hashlib.sha256).digest()


def link_key(signing_key: bytes, staff_id: str, generation: int) -> str:
    """The ``key`` of a staff calendar's address in ``generation``: 256 bits, URL-safe."""
    message = f"{staff_id}\n{generation}".encode()
    digest = hmac.new(signing_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def key_matches(signing_key: bytes, staff_id: str, generation: int, given: str | None) -> bool:
    """Whether ``given`` is the current key of ``staff_id``'s calendar, compared in constant
    time (a missing key is compared too, so it costs what a wrong one costs)."""
    expected = link_key(signing_key, staff_id, generation).encode()
    return hmac.compare_digest(expected, (given or "").encode())


class CalendarLink(BaseModel):
    """A staff member's secret calendar addresses (answer of the planners' link routes)."""

    staff_id: str
    generation: int
    """Raised by every rotation; addresses of earlier generations answer 404."""
    ics_path: str
    """The iCalendar feed, key included: what a calendar app subscribes to."""
    json_path: str
    """The same calendar as JSON, key included."""
    ics_url: str | None
    """``ics_path`` on ``KANALHUB_MOBILE_PUBLIC_URL``; null when that is not configured (the
    address is never built from the request's ``Host`` header)."""
    json_url: str | None
    """``json_path`` on ``KANALHUB_MOBILE_PUBLIC_URL``, or null."""


def calendar_link(
    signing_key: bytes, staff_id: str, generation: int, public_url: str | None
) -> CalendarLink:
    """The addresses of ``staff_id``'s calendar in ``generation``."""
    query = urlencode({"key": link_key(signing_key, staff_id, generation)})
    ics_path = f"/calendars/staff/{staff_id}.ics?{query}"
    json_path = f"/calendars/staff/{staff_id}?{query}"
    base = public_url.rstrip("/") if public_url else None
    return CalendarLink(
        staff_id=staff_id,
        generation=generation,
        ics_path=ics_path,
        json_path=json_path,
        ics_url=f"{base}{ics_path}" if base else None,
        json_url=f"{base}{json_path}" if base else None,
    )
