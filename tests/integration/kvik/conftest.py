"""A running kvik app (lifespan, relay, consumer) per test, an HTTP client, tokens, a registry
copy seeded through the real consumer path, and a reader of what reached the kvik topic."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from services.contracts import CloudEvent, EventType, Topic, new_event
from services.contracts.payloads.registry import EntryUpserted, ServiceUpserted
from services.kvik.app import create_app
from services.kvik.events import handlers
from services.kvik.service import KvikService
from services.kvik.settings import KvikSettings
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings
from tests.support.apps import running_app
from tests.support.tokens import auth, bearer
from tests.support.topics import events_after, events_on

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
ENTRY_ID = "kvik-test"
SERVICES = ("passport", "change_of_address")


def always_open() -> dict[str, Any]:
    """Opening hours open (almost) all day, every day, holidays included, around today."""
    today = dt.datetime.now(COPENHAGEN).date()
    return {
        "weekly": [{"weekday": d, "opens": "00:00", "closes": "23:59"} for d in range(7)],
        # Dated exceptions override public holidays, so the test does not depend on the date.
        "exceptions": [
            {
                "date": (today + dt.timedelta(days=offset)).isoformat(),
                "closed": False,
                "opens": "00:00",
                "closes": "23:59",
            }
            for offset in (-1, 0, 1)
        ],
    }


def entry_event(
    entry_id: str = ENTRY_ID,
    *,
    version: int = 1,
    kind: str = "kvik_point",
    status: str = "open",
    district: str = "amager-vest",
    hours: dict[str, Any] | None = None,
) -> CloudEvent:
    """A registry entry upsert, as the registry would publish it."""
    payload = EntryUpserted.model_validate(
        {
            "entry_id": entry_id,
            "version": version,
            "site_id": "site-test",
            "name": f"Borgerservice KVIK {entry_id}",
            "kind": kind,
            "entry_type": "service_and_offers",
            "administration": "okf",
            "coverage": "local",
            "district": district,
            "services": list(SERVICES),
            "staff_help": ["video", "phone"],
            "status": status,
            "opening_hours": hours if hours is not None else always_open(),
        }
    )
    return new_event(EventType.REGISTRY_ENTRY_UPSERTED, payload, source="/kanalhub/registry")


def service_event(code: str, version: int = 1) -> CloudEvent:
    """A catalogue service upsert."""
    payload = ServiceUpserted(code=code, version=version, name=code.title(), general_needs=True)
    return new_event(EventType.REGISTRY_SERVICE_UPSERTED, payload, source="/kanalhub/registry")


ADMIN = "admin-7f3a"
"""The subject of the fixture's admin token."""
STAFF = "staff-a1b2c3d4"
"""The subject of the fixture's staff token."""


def session_body(kiosk: str, **overrides: Any) -> dict[str, Any]:
    """A valid finished session of the kiosk ``kiosk`` that ended five minutes ago."""
    now = dt.datetime.now(dt.UTC)
    body: dict[str, Any] = {
        "session_id": str(uuid4()),
        "kiosk_id": kiosk,
        "service": "passport",
        "started_at": (now - dt.timedelta(minutes=12)).isoformat(),
        "ended_at": (now - dt.timedelta(minutes=5)).isoformat(),
        "steps": ["choose_service", "identify", "form", "receipt"],
        "outcome": "completed",
        "help": "none",
    }
    body.update(overrides)
    return body


@dataclass
class Kvik:
    """One kvik app under test."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: KvikSettings
    admin: dict[str, str]
    staff: dict[str, str]

    @property
    def hub(self) -> HubSettings:
        return self.settings.hub

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    @property
    def service(self) -> KvikService:
        service: KvikService = self.app.state.kvik
        return service

    async def apply(self, *events: CloudEvent) -> None:
        """Apply registry events through the consumer's own path (dedupe + transaction)."""
        table = handlers(self.hub)
        consumer = self.runtime.consumer
        assert consumer is not None
        for event in events:
            assert await consumer.apply(event, table[event.type]) == "handled"

    async def seed(self) -> None:
        """The catalogue services and one open KVIK point in Amager Vest."""
        await self.apply(*(service_event(code) for code in SERVICES), entry_event())

    async def register(self, kiosk_id: str = "kiosk-test-01", entry_id: str = ENTRY_ID) -> str:
        """Register a kiosk; its device token."""
        response = await self.client.post(
            "/kiosks", json={"kiosk_id": kiosk_id, "entry_id": entry_id}, headers=self.admin
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    async def events(self, expect: int) -> list[CloudEvent]:
        """The events on this test's kvik topic once ``expect`` of them are there."""
        return await events_on(self.hub, Topic.KVIK, expect)

    async def events_after(self, seen: list[CloudEvent]) -> list[CloudEvent]:
        """The events beyond ``seen`` that reach the kvik topic within the absence window (a
        test asserting that nothing more is published expects none)."""
        return await events_after(self.hub, Topic.KVIK, seen)

    async def snapshot(self) -> dict[str, Any]:
        """Everything a refused request must leave untouched: every kvik key but the rate
        buckets, failed-token counts and relay bookkeeping, and the outbox's last written id
        (which any staged event would move, even once relayed)."""
        redis = self.runtime.redis
        outbox = self.runtime.outbox.stream
        skip = (
            outbox,
            self.hub.key("kvik", "rate:"),
            self.hub.key("kvik", "seen:"),
            # A refused unknown token counts against its address (token_failures.py).
            self.hub.key("kvik", "token-failures:"),
        )
        keys = sorted(
            key
            for key in await redis.keys(self.hub.key("kvik", "*"))
            if not key.decode().startswith(skip)
        )
        state: dict[str, Any] = {key: await redis.dump(key) for key in keys}
        # The relay creates the stream (empty) whenever it starts: no stream is "0-0" too.
        state["outbox"] = b"0-0"
        if await redis.exists(outbox):
            state["outbox"] = (await redis.xinfo_stream(outbox))["last-generated-id"]
        return state


def kvik_settings(hub: HubSettings, **overrides: Any) -> KvikSettings:
    """Settings for tests: background loops off (tests drive them), small limits."""
    values: dict[str, Any] = {
        "hub": hub,
        "background_tasks": False,
        "heartbeat_interval_seconds": 1.0,
        "idle_timeout_seconds": 60.0,
        "help_escalate_after_seconds": 60.0,
        "help_stream_poll_seconds": 0.05,
        "max_body_bytes": 64 * 1024,
        "max_batch_items": 50,
    }
    values.update(overrides)
    return KvikSettings(**values)


@asynccontextmanager
async def running(settings: KvikSettings) -> AsyncIterator[Kvik]:
    """A started kvik app on ``settings``, connected to Kafka, and a client for it."""
    app = create_app(settings)
    async with running_app(app, "kvik") as client:
        yield Kvik(
            app,
            client,
            settings,
            auth(settings.hub, "kvik:admin", subject=ADMIN),
            auth(settings.hub, "kvik:staff", subject=STAFF),
        )


@pytest.fixture
async def kvik(hub_settings: HubSettings) -> AsyncIterator[Kvik]:
    """A kvik app with the catalogue and one open KVIK point copied from registry events."""
    async with running(kvik_settings(hub_settings)) as app:
        await app.seed()
        yield app


@pytest.fixture
async def kiosk(kvik: Kvik) -> dict[str, str]:
    """The Authorization header of a kiosk registered at the KVIK point."""
    return bearer(await kvik.register())
