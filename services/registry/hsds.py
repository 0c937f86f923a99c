"""The open-data export in the Open Referral HSDS 3 shape, and its validation.

Mapping: organization = administration; location = site; service = entry (an entry is one
administration's service delivery point or channel; the catalogue services it handles are named
in its description); service_at_location = the entry at its site; schedule = one weekly opening
interval or one dated exception with hours. Entries without a site (the contact centre, the
digital channel) carry their schedules on the service itself. Retired records are left out.

HSDS wants UUIDs; ours are slugs, so every id is a UUID5 of the kind and our id: stable across
exports, so a consumer can diff two of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.contracts.payloads.registry import (
    EntryUpserted,
    OpeningHours,
    ServiceUpserted,
    SiteUpserted,
)
from services.contracts.reference import Administration, EntryStatus

SCHEMA_DIR = Path(__file__).parent / "data" / "hsds"
_NAMESPACE = uuid.UUID("5b0f2f1e-6c1a-4d47-9a43-2f1c6b1a7e10")
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_STATUS = {
    EntryStatus.OPEN: "active",
    EntryStatus.PLANNED: "inactive",
    EntryStatus.TEMPORARILY_CLOSED: "temporarily closed",
    EntryStatus.CLOSED: "defunct",
}
_HOURS_NOTE = "Local time, Europe/Copenhagen. Closed on Danish public holidays unless stated."


def _id(kind: str, our_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{our_id}"))


def _organization(admin: Administration) -> dict[str, Any]:
    return {
        "id": _id("organization", admin.value),
        "name": admin.danish_name,
        "alternate_name": f"{admin.abbreviation} ({admin.english_name})",
        "description": f"{admin.english_name} of Copenhagen Municipality (Københavns Kommune).",
        "website": "https://www.kk.dk",
    }


def _location(site: SiteUpserted) -> dict[str, Any]:
    location_id = _id("location", site.site_id)
    return {
        "id": location_id,
        "location_type": "physical",
        "organization_id": _id("organization", site.owner.value),
        "name": site.name,
        "external_identifier": site.site_id,
        "external_identifier_type": "kanalhub site_id",
        "latitude": site.latitude,
        "longitude": site.longitude,
        "addresses": [
            {
                "id": _id("address", site.site_id),
                "location_id": location_id,
                "address_1": site.address.street,
                "city": site.address.city,
                "state_province": "Region Hovedstaden",
                "postal_code": site.address.postal_code,
                "country": "DK",
                "address_type": "physical",
            }
        ],
    }


def _schedules(entry: EntryUpserted, hours: OpeningHours, link: dict[str, str]) -> list[Any]:
    schedules: list[dict[str, Any]] = []
    for index, interval in enumerate(hours.weekly):
        schedules.append(
            {
                "id": _id("schedule", f"{entry.entry_id}:weekly:{index}"),
                **link,
                "freq": "WEEKLY",
                "wkst": "MO",
                "byday": _DAYS[interval.weekday],
                "opens_at": interval.opens,
                "closes_at": interval.closes,
                "description": _HOURS_NOTE,
            }
        )
    for exception in hours.exceptions:
        day = exception.date.isoformat()
        schedule: dict[str, Any] = {
            "id": _id("schedule", f"{entry.entry_id}:exception:{day}"),
            **link,
            "valid_from": day,
            "valid_to": day,
            "dtstart": day,
        }
        if exception.closed:
            schedule["description"] = f"Closed on {day}."
        else:
            schedule.update(
                opens_at=exception.opens,
                closes_at=exception.closes,
                description=f"Open on {day} at these hours only. {_HOURS_NOTE}",
            )
        schedules.append(schedule)
    return schedules


def export(
    catalogue: Iterable[ServiceUpserted],
    sites: Iterable[SiteUpserted],
    entries: Iterable[EntryUpserted],
) -> dict[str, Any]:
    """The registry as HSDS 3: ``organizations``, ``locations`` and ``services`` (each service
    complete, with its organization, service_at_locations with location, and schedules)."""
    names = {service.code: service.name for service in catalogue}
    site_by_id = {site.site_id: site for site in sites}
    services = []
    for entry in entries:
        if entry.status is EntryStatus.CLOSED:
            continue
        service_id = _id("service", entry.entry_id)
        offered = ", ".join(names.get(code, code) for code in entry.services) or "none listed"
        service: dict[str, Any] = {
            "id": service_id,
            "organization_id": _id("organization", entry.administration.value),
            "name": entry.name,
            "description": (
                f"{entry.kind.value.replace('_', ' ').capitalize()} "
                f"({entry.coverage.value.replace('_', '-')} coverage). Services: {offered}."
            ),
            "status": _STATUS[entry.status],
            "organization": _organization(entry.administration),
            "service_at_locations": [],
            "schedules": [],
        }
        site = site_by_id.get(entry.site_id) if entry.site_id is not None else None
        if site is None:
            service["schedules"] = _schedules(
                entry, entry.opening_hours, {"service_id": service_id}
            )
        else:
            link_id = _id("service_at_location", entry.entry_id)
            location = _location(site)
            service["service_at_locations"] = [
                {
                    "id": link_id,
                    "service_id": service_id,
                    "location_id": location["id"],
                    "location": location,
                    "schedules": _schedules(
                        entry, entry.opening_hours, {"service_at_location_id": link_id}
                    ),
                }
            ]
        services.append(service)
    return {
        "organizations": [_organization(admin) for admin in Administration],
        "locations": [_location(site) for site in site_by_id.values()],
        "services": services,
    }
