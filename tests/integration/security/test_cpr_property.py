"""The CPR guard at every door, as a property: for every write route of every service, a
CPR-shaped value (generated: ``DDMMYY-SSSS`` or ``DDMMYYSSSS`` with a valid day and month,
alone or inside other text) put into any string field of an otherwise valid body is refused
with 422 naming that field, and nothing is stored or staged.

The bodies are written out below, one per write route; a test checks that the table holds
every write route of each app's OpenAPI document that takes a body (and that the routes listed
as bodyless really take none), so a new route cannot be left out. Strings are found by walking
the body, so a field added to a body here is covered too. JSON bodies, CSV files (each cell)
and the bulk import (JSON and CSV) all go through the same guard (services/plumbing/edge_models.py).
"""

from __future__ import annotations

import asyncio
import copy
import csv
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.contracts.guard import CPR_PATTERN
from services.contracts.payloads.registry import EntryUpserted
from services.kvik.events import handlers
from services.metrics.intake import CSV_COLUMNS as INTAKE_CSV_COLUMNS
from services.metrics.store import MetricsStore
from services.plumbing.auth import Role, mint_token
from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings
from services.registry.bulk import ENTRY_COLUMNS, SITE_COLUMNS
from tests.integration.kvik.conftest import ENTRY_ID, entry_event, service_event, session_body
from tests.integration.registry.conftest import ENTRY, SITE
from tests.integration.security.services import (
    SERVICES,
    create_app,
    redis_state,
    running_service,
    service_settings,
    staged,
)

pytestmark = pytest.mark.integration

ALL_ROLES = [role.value for role in Role]
"""Person routes are called with every role, so nothing is refused before the body is read."""
KIOSK = "kiosk-cpr-01"
EXAMPLES = 10
"""Each example puts a fresh value into every string field of every route (about 150
requests per service), so a handful of examples is plenty: about 4 s per service."""

Path = tuple[int | str, ...]

# -- the generated values ----------------------------------------------------------------------

_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
# Glued to a letter or digit a run is not a CPR number by design (services/contracts/guard.py):
# text around it is separated by punctuation or a blank.
_SEPARATORS = st.sampled_from(["-", "_", ".", " ", ":"])


@st.composite
def cpr_values(draw: st.DrawFn) -> str:
    """A CPR-shaped string: ``DDMMYY-SSSS`` or ``DDMMYYSSSS`` with day 01-31 and month 01-12,
    alone or with text before and/or after it."""
    number = "{:02d}{:02d}{:02d}{}{:04d}".format(
        draw(st.integers(1, 31)),
        draw(st.integers(1, 12)),
        draw(st.integers(0, 99)),
        draw(st.sampled_from(["-", ""])),
        draw(st.integers(0, 9999)),
    )
    if draw(st.booleans()):
        number = draw(_WORDS) + draw(_SEPARATORS) + number
    if draw(st.booleans()):
        number = number + draw(_SEPARATORS) + draw(_WORDS)
    assert CPR_PATTERN.search(number), number  # the strategy makes what the guard must catch
    return number


# -- the write routes and a valid body for each ------------------------------------------------


def _moment(days: float = 0, hours: float = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days, hours=hours)).isoformat()


def _local(days: int, hour: int) -> str:
    """A Copenhagen wall-clock time ``days`` from today (the mobile service's form)."""
    return f"{dt.date.today() + dt.timedelta(days=days)}T{hour:02d}:00:00"


YESTERDAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()
SESSION_ID = "6f1c0c1e-3c55-4a8e-9d6b-2f0e3a1b9c01"

SERVICE: dict[str, Any] = {"code": "passport", "name": "Pas", "general_needs": True}
PLACE: dict[str, Any] = {
    "place_id": "place-valby-st",
    "name": "Valby Station",
    "district": "valby",
    "latitude": 55.66,
    "longitude": 12.51,
    "kind": "other",
}
PLAN: dict[str, Any] = {
    "place": PLACE,
    "staff": ["staff-abcdef"],
    "kit": ["kit-laptop-1"],
    "services": ["passport"],
}
VISIT: dict[str, Any] = {
    **PLAN,
    "visit_id": "visit-cpr-1",
    "starts_at": _local(7, 10),
    "ends_at": _local(7, 12),
}
TICKET: dict[str, Any] = {
    "ticket_id": "t-1",
    "service": "passport",
    "desk_id": "desk-3",
    "staff_id": "staff-abcdef",
    "issued_at": _moment(hours=-3),
    "called_at": _moment(hours=-2.9),
    "served_at": _moment(hours=-2.9),
    "ended_at": _moment(hours=-2.8),
    "outcome": "served",
}


def _body_field(path: Path) -> str:
    """How the problem+json answer names a JSON body field: ``body.items[0].service``."""
    return _dotted(("body", *path))


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class Write:
    """One write route and a valid body for it.

    ``body`` is JSON, or for a CSV route the file as rows (header first). ``names`` says how
    the 422 answer names the field at a path; ``device`` routes are called with the kiosk's
    device token, all others with a token holding every role.
    """

    method: str
    template: str
    path: str
    body: Any
    csv: bool = False
    params: dict[str, str] = field(default_factory=dict)
    names: Callable[[Path], str] = _body_field
    device: bool = False
    batch: bool = False
    """The kvik batch answers 207 with one result per item: the item's result must be 422."""

    def string_paths(self) -> Iterator[Path]:
        """Where the body holds a string (a CSV: every cell after the header)."""
        if self.csv:
            for row in range(1, len(self.body)):
                for column in range(len(self.body[row])):
                    yield (row, column)
        else:
            yield from _strings(self.body, ())

    def with_value(self, path: Path, value: str) -> Any:
        body = copy.deepcopy(self.body)
        target = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return body

    async def send(self, client: httpx.AsyncClient, body: Any, token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "If-Match": '"1"'}
        if self.csv:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(body)
            headers["Content-Type"] = "text/csv"
            return await client.request(
                self.method, self.path, content=text.getvalue(), params=self.params, headers=headers
            )
        return await client.request(
            self.method, self.path, json=body, params=self.params, headers=headers
        )


def _strings(value: Any, path: Path) -> Iterator[Path]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _csv_names(prefix: str, columns: list[str], renamed: dict[str, str] | None = None) -> Any:
    """How a CSV cell is named: ``{prefix}.{field}``, the field being the cell's column (or what
    the column is read into)."""
    renamed = renamed or {}

    def names(path: Path) -> str:
        column = columns[int(path[1])]
        return f"{prefix}.{renamed.get(column, column)}"

    return names


def _rows(record: dict[str, Any], columns: list[str]) -> list[list[str]]:
    return [columns, [str(record[c]) for c in columns]]


SITE_CSV_COLUMNS = SITE_COLUMNS
SITE_CSV = {**SITE, **SITE["address"]}
ENTRY_CSV_COLUMNS = ENTRY_COLUMNS
ENTRY_CSV = {**ENTRY, "services": "passport", "staff_help": "video", "weekly": "0 10:00-19:00"}
INTAKE_COLUMNS = list(INTAKE_CSV_COLUMNS)
DESK_COLUMNS = list(TICKET)


def writes(kiosk: str = KIOSK) -> dict[str, list[Write]]:
    """Per service, every write route that takes a body, with a valid body."""
    e = "/desk/entries/entry-test"
    return {
        "registry": [
            Write("POST", "/services", "/services", SERVICE),
            Write("PUT", "/services/{code}", "/services/passport", SERVICE),
            Write("POST", "/sites", "/sites", SITE),
            Write("PUT", "/sites/{site_id}", "/sites/site-test", SITE),
            Write("POST", "/entries", "/entries", ENTRY),
            Write("PUT", "/entries/{entry_id}", "/entries/entry-test", ENTRY),
            Write(
                "POST", "/import", "/import", {"sites": [SITE], "entries": [ENTRY]}, names=_dotted
            ),
            Write(
                "POST",
                "/import",
                "/import",
                _rows(SITE_CSV, SITE_CSV_COLUMNS),
                csv=True,
                params={"format": "csv", "kind": "site"},
                names=_csv_names(
                    "sites[0]",
                    SITE_CSV_COLUMNS,
                    {c: f"address.{c}" for c in ("street", "postal_code", "city")},
                ),
            ),
            Write(
                "POST",
                "/import",
                "/import",
                _rows(ENTRY_CSV, ENTRY_CSV_COLUMNS),
                csv=True,
                params={"format": "csv", "kind": "entry"},
                names=_csv_names(
                    "entries[0]",
                    ENTRY_CSV_COLUMNS,
                    {"weekly": "opening_hours.weekly[0]", "services": "services[0]"}
                    | {"staff_help": "staff_help[0]"},
                ),
            ),
        ],
        "kvik": [
            Write("POST", "/kiosks", "/kiosks", {"kiosk_id": "kiosk-new-1", "entry_id": ENTRY_ID}),
            Write(
                "POST",
                "/kiosks/{kiosk_id}/heartbeat",
                f"/kiosks/{kiosk}/heartbeat",
                {"software_version": "1.4.2", "state": "ready"},
                device=True,
            ),
            Write("POST", "/sessions", "/sessions", session_body(kiosk), device=True),
            Write(
                "POST",
                "/sessions/batch",
                "/sessions/batch",
                {"sessions": [session_body(kiosk)]},
                device=True,
                batch=True,
            ),
            Write(
                "POST",
                "/sessions/{session_id}/start",
                f"/sessions/{SESSION_ID}/start",
                {"kiosk_id": kiosk, "service": "passport", "started_at": _moment(hours=-0.1)},
                device=True,
            ),
            Write(
                "POST",
                "/sessions/{session_id}/steps",
                f"/sessions/{SESSION_ID}/steps",
                {"kiosk_id": kiosk, "steps": [{"seq": 0, "code": "identify", "at": _moment()}]},
                device=True,
            ),
            Write(
                "POST",
                "/sessions/{session_id}/end",
                f"/sessions/{SESSION_ID}/end",
                {
                    "kiosk_id": kiosk,
                    "ended_at": _moment(),
                    "outcome": "completed",
                    "help": "none",
                    "service": "passport",
                    "started_at": _moment(hours=-0.1),
                    "steps": ["identify", "receipt"],
                },
                device=True,
            ),
            Write(
                "POST",
                "/help",
                "/help",
                {
                    "help_request_id": str(uuid.UUID(int=7)),
                    "kiosk_id": kiosk,
                    "session_id": SESSION_ID,
                    "channel": "video",
                },
                device=True,
            ),
        ],
        "mobile": [
            Write("POST", "/visits", "/visits", VISIT),
            Write("POST", "/visits/held", "/visits/held", VISIT),
            Write(
                "PATCH",
                "/visits/{visit_id}",
                "/visits/visit-cpr-1",
                {
                    "starts_at": _local(8, 10),
                    "ends_at": _local(8, 12),
                    "staff": ["staff-abcdef"],
                    "kit": ["kit-laptop-1"],
                    "services": ["passport"],
                },
            ),
            Write(
                "POST",
                "/visits/{visit_id}/complete",
                "/visits/visit-cpr-1/complete",
                {"started_at": _local(-1, 10), "ended_at": _local(-1, 12)},
            ),
            Write(
                "POST",
                "/visits/{visit_id}/cancel",
                "/visits/visit-cpr-1/cancel",
                {"reason": "low_demand"},
            ),
            Write(
                "POST",
                "/visits/{visit_id}/bookings",
                "/visits/visit-cpr-1/bookings",
                {"booking_ref": "bk-1"},
            ),
            Write(
                "POST",
                "/visits/{visit_id}/contacts",
                "/visits/visit-cpr-1/contacts",
                {
                    "contact_id": "contact-1",
                    "service": "passport",
                    "mode": "assisted",
                    "booking_ref": "bk-1",
                    "at": _local(0, 11),
                },
            ),
            Write(
                "POST",
                "/series",
                "/series",
                {
                    **PLAN,
                    "series_id": "series-cpr-1",
                    "first_starts_at": _local(7, 10),
                    "duration_minutes": 120,
                    "rrule": "FREQ=WEEKLY;COUNT=4",
                    "exceptions": [
                        {
                            "date": str(dt.date.today() + dt.timedelta(days=14)),
                            "moved_to": _local(15, 10),
                        }
                    ],
                },
            ),
            Write(
                "PATCH",
                "/series/{series_id}/occurrences/{day}",
                f"/series/series-cpr-1/occurrences/{dt.date.today() + dt.timedelta(days=7)}",
                {
                    "start_time": "11:00",
                    "staff": ["staff-abcdef"],
                    "kit": ["kit-laptop-1"],
                    "services": ["passport"],
                },
            ),
            Write(
                "POST",
                "/series/{series_id}/occurrences/{day}/cancel",
                f"/series/series-cpr-1/occurrences/{dt.date.today() + dt.timedelta(days=7)}/cancel",
                {"reason": "low_demand"},
            ),
        ],
        "metrics": [
            Write(
                "POST",
                "/intake",
                "/intake",
                {
                    "source": "digital_platform",
                    "day": YESTERDAY,
                    "items": [
                        {
                            "district": "valby",
                            "service": "passport",
                            "self_service": 9,
                            "assisted": 1,
                        }
                    ],
                },
            ),
            Write(
                "POST",
                "/intake/csv",
                "/intake/csv",
                [INTAKE_COLUMNS, ["valby", "passport", "9", "1"]],
                csv=True,
                params={"source": "digital_platform", "day": YESTERDAY},
                names=_csv_names("line 2", INTAKE_COLUMNS),
            ),
            Write(
                "PUT",
                "/desk/entries/{entry_id}/tickets/{ticket_id}",
                f"{e}/tickets/t-1",
                TICKET,
            ),
            Write(
                "PUT",
                "/desk/entries/{entry_id}/days/{day}",
                f"{e}/days/{YESTERDAY}",
                {"district": "amager-vest", "tickets": [TICKET]},
            ),
            Write(
                "PUT",
                "/desk/entries/{entry_id}/days/{day}/csv",
                f"{e}/days/{YESTERDAY}/csv",
                _rows(TICKET, DESK_COLUMNS),
                csv=True,
                names=_csv_names("line 2", DESK_COLUMNS),
            ),
        ],
    }


BODYLESS = {
    "registry": {("DELETE", "/services/{code}"), ("DELETE", "/sites/{site_id}")}
    | {("DELETE", "/entries/{entry_id}")},
    "kvik": {
        ("POST", "/kiosks/{kiosk_id}/token"),
        ("DELETE", "/kiosks/{kiosk_id}/token"),
        ("POST", "/kiosks/{kiosk_id}/reinstate"),
        ("POST", "/help/{help_id}/take"),
    },
    "mobile": {
        ("POST", "/visits/{visit_id}/confirm"),
        ("POST", "/visits/{visit_id}/start"),
        ("DELETE", "/visits/{visit_id}/bookings/{booking_ref}"),
        ("POST", "/calendars/staff/{staff_id}/link/rotate"),
    },
    "metrics": set(),
}
"""Write routes that take no body: nothing to put a value into (their path parameters are
checked in tests/integration/security/test_query_parameters.py)."""

WRITE_METHODS = {"post", "put", "patch", "delete"}


@pytest.mark.parametrize("name", list(SERVICES))
def test_the_table_holds_every_write_route_that_takes_a_body(
    name: str, hub_settings: HubSettings
) -> None:
    document = create_app(name, service_settings(name, hub_settings)).openapi()
    with_body = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in WRITE_METHODS and "requestBody" in operation
    }
    without = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in WRITE_METHODS and "requestBody" not in operation
    }
    assert {(w.method, w.template) for w in writes()[name]} == with_body
    assert without == BODYLESS[name]


# -- the property ------------------------------------------------------------------------------


@dataclass
class Target:
    """A running service, the tokens to call it with, and what it held before."""

    name: str
    app: FastAPI
    client: httpx.AsyncClient
    hub: HubSettings
    person: str
    device: str
    before: dict[bytes, Any]
    staged: int
    skipped: tuple[bytes, ...]

    async def state(self) -> tuple[dict[bytes, Any], int]:
        """Every key of the test (but the rate and failed-token counters, which a request may
        move however it ends) and how many events were ever staged."""
        state = await redis_state(self.app, self.hub.key_prefix)
        kept = {k: v for k, v in state.items() if not k.startswith(self.skipped)}
        return kept, await staged(self.app)


async def _kiosk_token(app: FastAPI, client: httpx.AsyncClient, person: str) -> str:
    """Seed kvik's registry copy through its consumer path and register a kiosk: its token."""
    hub: HubSettings = app.state.runtime.settings.hub
    table = handlers(hub)
    consumer = app.state.runtime.consumer
    assert consumer is not None
    for event in (*(service_event(c) for c in ("passport", "change_of_address")), entry_event()):
        assert await consumer.apply(event, table[event.type]) == "handled"
    response = await client.post(
        "/kiosks",
        json={"kiosk_id": KIOSK, "entry_id": ENTRY_ID},
        headers={"Authorization": f"Bearer {person}"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def _desk_entry(app: FastAPI, settings: HubSettings) -> None:
    """The metrics registry copy with the catalogue and ``entry-test`` as a centre with desks,
    so the desk routes read the body rather than answer 404 (set directly, as the desk tests
    do)."""
    store = MetricsStore(settings)
    entry = EntryUpserted.model_validate(
        {**ENTRY, "version": 1, "kind": "citizen_service_centre", "staff_help": ["in_person"]}
    )
    runtime: ServiceRuntime = app.state.runtime
    async with runtime.redis.pipeline(transaction=True) as pipe:
        store.set_service(pipe, "passport", general_needs=True)
        store.upsert_entry(pipe, entry)
        await pipe.execute()


@pytest.fixture(params=list(SERVICES))
async def target(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[Target]:
    name = request.param
    # A kiosk's rate limit would answer 429 before the body is read, long before this test's
    # few hundred requests are through.
    # The periodic loops (liveness, sweeper, escalation) write on their own clock: on a loaded
    # machine the liveness round came inside the test and read as "something was stored".
    overrides: dict[str, Any] = (
        {"rate_per_second": 10_000.0, "rate_burst": 100_000, "background_tasks": False}
        if name == "kvik"
        else {}
    )
    async with running_service(name, hub_settings, **overrides) as (app, client):
        person = mint_token(hub_settings, "cpr-probe", ALL_ROLES)
        device = await _kiosk_token(app, client, person) if name == "kvik" else ""
        if name == "metrics":
            await _desk_entry(app, hub_settings)
        # Let the lifespan's own writes (seeding, relay) settle before the snapshot.
        await asyncio.sleep(0.5)
        skipped = tuple(
            hub_settings.key(name, part).encode() for part in ("rate:", "token-failures:")
        )
        found = Target(name, app, client, hub_settings, person, device, {}, 0, skipped)
        found.before, found.staged = await found.state()
        yield found


def _problems(response: httpx.Response, batch: bool) -> tuple[int, list[str]]:
    """The status and the fields named; for the batch, those of its one item."""
    if not response.headers.get("content-type", "").startswith(
        (PROBLEM_MEDIA_TYPE, "application/json")
    ):
        return response.status_code, []
    document = response.json()
    if batch and response.status_code == 207:
        item = document["items"][0]
        return item["status"], [e["field"] for e in (item.get("problem") or {}).get("errors", [])]
    return response.status_code, [e["field"] for e in document.get("errors", [])]


def _named(expected: str, fields: list[str]) -> bool:
    # A CSV cell read into a list or a nested record (the import's weekly hours) is named by
    # the item or the part of it that the value broke.
    return any(f == expected or f.startswith((f"{expected}.", f"{expected}[")) for f in fields)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # No shrinking: every example already names each failing route and field, and shrinking
    # a few hundred requests per example takes minutes.
    phases=[Phase.explicit, Phase.generate],
    database=None,
    # The service is started once per test and used by every example, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
async def test_a_cpr_shaped_value_in_any_string_field_is_refused_and_nothing_is_stored(
    target: Target, data: st.DataObject
) -> None:
    wrong: list[str] = []
    for write in writes()[target.name]:
        token = target.device if write.device else target.person
        for path in write.string_paths():
            value = data.draw(cpr_values(), label=f"{write.method} {write.template} {path}")
            response = await write.send(target.client, write.with_value(path, value), token)
            status, fields = _problems(response, write.batch)
            expected = write.names(path)
            if status != 422 or not _named(expected, fields):
                wrong.append(
                    f"{write.method} {write.path} {expected}: {response.status_code} {fields}"
                )
            state, staged_now = await target.state()
            if (state, staged_now) != (target.before, target.staged):
                changed = sorted(k.decode() for k in state.keys() ^ target.before.keys()) + sorted(
                    k.decode()
                    for k in state.keys() & target.before.keys()
                    if state[k] != target.before[k]
                )
                wrong.append(
                    f"{write.method} {write.path} {expected}: something was stored "
                    f"(keys {changed}, staged {target.staged} -> {staged_now})"
                )
    assert not wrong, f"{target.name}:\n" + "\n".join(wrong)
