"""A running mobile app (lifespan, consumer, relay) per test, an HTTP client, a producer that
stands in for the registry and metrics services, and a reader of the mobile topic."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.contracts import (
    CloudEvent,
    DistrictShareChanged,
    EntryUpserted,
    EventType,
    SiteUpserted,
    Topic,
    new_event,
)
from services.contracts.geography import COPENHAGEN
from services.contracts.reference import District
from services.mobile.app import create_app
from services.mobile.settings import MobileSettings
from services.mobile.store import MobileStore
from services.plumbing.producer import EventProducer
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings
from tests.support.apps import outbox_drained, running_app
from tests.support.tokens import auth
from tests.support.topics import events_after, events_on

STAFF_A = "staff-a1b2c3"
STAFF_B = "staff-d4e5f6"

# Two ad-hoc places about 9 km apart: Vanløse station and Amager Strand station.
VANLOSE = {
    "name": "Vanløse Station",
    "district": "vanlose",
    "latitude": 55.6873,
    "longitude": 12.4913,
    "kind": "train_station",
}
AMAGER = {
    "name": "Amager Strand Station",
    "district": "amager-ost",
    "latitude": 55.6587,
    "longitude": 12.6267,
    "kind": "train_station",
}


@dataclass
class Mobile:
    """One mobile app under test."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: HubSettings
    producer: EventProducer
    planner: dict[str, str]
    """Authorization header with ``mobile:plan``."""

    @property
    def store(self) -> MobileStore:
        store: MobileStore = self.app.state.mobile_store
        return store

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    async def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        """POST as the planner."""
        return await self.client.post(path, json=body, headers={**self.planner, **headers})

    async def plan(self, **body: Any) -> httpx.Response:
        """POST /visits with sensible defaults (an ad-hoc place, staff A, a passport service)."""
        doc: dict[str, Any] = {"place": VANLOSE, "services": ["passport"], "staff": [STAFF_A]}
        doc.update(body)
        return await self.post("/visits", doc)

    async def staff_calendar(
        self, staff_id: str, *, ics: bool = False, params: dict[str, str] | None = None
    ) -> httpx.Response:
        """GET a staff member's calendar (JSON, or the ``.ics`` feed) at its secret address,
        which the planner asks the link route for, as a calendar app's user would."""
        link = await self.client.get(f"/calendars/staff/{staff_id}/link", headers=self.planner)
        assert link.status_code == 200, link.text
        url = httpx.URL(link.json()["ics_path" if ics else "json_path"])
        # httpx replaces a URL's query with ``params``: add them to the key instead.
        return await self.client.get(url.copy_merge_params(params or {}))

    async def publish(self, *events: CloudEvent) -> None:
        """Publish events as their own service would."""
        for event in events:
            await self.producer.publish(event)

    async def handled(self) -> int:
        """How many distinct events the consumer has stored (its dedupe marks)."""
        return len(await self.runtime.redis.keys(self.settings.key("mobile", "seen", "*")))

    async def wait_handled(self, count: int, within: float = 20.0) -> None:
        """Wait until ``count`` distinct events are stored."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await self.handled() < count:
            assert loop.time() < deadline, f"only {await self.handled()} of {count} handled"
            await asyncio.sleep(0.05)

    async def nothing_staged(self) -> bool:
        """True when nothing was ever written to the outbox (so no event was published)."""
        stream = self.runtime.outbox.stream
        if not await self.runtime.redis.exists(stream):
            return True
        info = await self.runtime.redis.xinfo_stream(stream)
        return info["last-generated-id"] in (b"0-0", "0-0")

    async def events(self, expect: int) -> list[CloudEvent]:
        """The events on this test's mobile topic once ``expect`` of them are there."""
        await outbox_drained(self.app)
        return await events_on(self.settings, Topic.MOBILE, expect)

    async def events_after(self, seen: list[CloudEvent]) -> list[CloudEvent]:
        """The events beyond ``seen`` that reach the mobile topic within the absence window
        (a test asserting that nothing more is published expects none)."""
        await outbox_drained(self.app)
        return await events_after(self.settings, Topic.MOBILE, seen)


PLANNER = "planner-3f9a"
"""The subject of the fixture's planner token."""


@asynccontextmanager
async def running(settings: MobileSettings) -> AsyncIterator[Mobile]:
    """A started mobile app, connected to Kafka, and a started producer on ``settings``."""
    app = create_app(settings)
    producer = EventProducer(settings.hub, client_id="test-publisher")
    async with running_app(app, "mobile") as client:
        await producer.start()
        try:
            yield Mobile(
                app,
                client,
                settings.hub,
                producer,
                auth(settings.hub, "mobile:plan", subject=PLANNER),
            )
        finally:
            await producer.stop()


@pytest.fixture
async def mobile(hub_settings: HubSettings) -> AsyncIterator[Mobile]:
    """A mobile app consuming this test's topics (15 km/h, 15 min buffer)."""
    async with running(MobileSettings(hub=hub_settings)) as app:
        yield app


def future_day(weekday: int, weeks: int = 2) -> dt.date:
    """A ``weekday`` (0 = Monday) at least ``weeks`` weeks from today."""
    day = dt.datetime.now(COPENHAGEN).date() + dt.timedelta(weeks=weeks)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def local(day: dt.date, clock: str) -> str:
    """ISO time without offset: Copenhagen wall-clock time on ``day``."""
    return f"{day.isoformat()}T{clock}:00"


def site_event(site_id: str = "site-fisketorvet", version: int = 1) -> CloudEvent:
    """A registry site in Vesterbro/Kongens Enghave."""
    return new_event(
        EventType.REGISTRY_SITE_UPSERTED,
        SiteUpserted(
            site_id=site_id,
            version=version,
            name="Fisketorvet indkøbscenter",
            address={"street": "Kalvebod Brygge 59", "postal_code": "1560", "city": "København V"},
            district=District.VESTERBRO_KONGENS_ENGHAVE,
            latitude=55.6617,
            longitude=12.5605,
            owner="okf",
        ),
        source="/kanalhub/registry",
    )


def entry_event(
    site_id: str = "site-fisketorvet", opens: str = "10:00", closes: str = "16:00"
) -> CloudEvent:
    """A staffed mobile stop at the site, open Monday to Friday ``opens``-``closes``."""
    return new_event(
        EventType.REGISTRY_ENTRY_UPSERTED,
        EntryUpserted(
            entry_id=f"entry-{site_id}",
            version=1,
            site_id=site_id,
            name="Mobil Borgerservice Fisketorvet",
            kind="mobile_stop",
            entry_type="service_and_offers",
            administration="okf",
            coverage="local",
            district=District.VESTERBRO_KONGENS_ENGHAVE,
            services=("passport",),
            staff_help=("in_person",),
            status="open",
            opening_hours={
                "weekly": [{"weekday": d, "opens": opens, "closes": closes} for d in range(5)]
            },
        ),
        source="/kanalhub/registry",
    )


def share_event(district: District, share: float, minute: int = 0) -> CloudEvent:
    """The metrics service's word on a district's digital share over the last 30 days."""
    today = dt.datetime.now(dt.UTC).date()
    return new_event(
        EventType.METRICS_DISTRICT_SHARE_CHANGED,
        DistrictShareChanged(
            district=district,
            window_days=30,
            first_day=today - dt.timedelta(days=29),
            last_day=today,
            self_service=int(share * 1000),
            assisted=1000 - int(share * 1000),
            share=share,
            computed_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minute),
        ),
        source="/kanalhub/metrics",
    )


async def with_site(mobile: Mobile) -> None:
    """Publish the Fisketorvet site and its entry, and wait until the copy has both."""
    before = await mobile.handled()
    await mobile.publish(site_event(), entry_event())
    await mobile.wait_handled(before + 2)
