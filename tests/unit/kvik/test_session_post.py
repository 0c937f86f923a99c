"""The fast path of ``POST /sessions`` (services/kvik/api.py, domain.py, store.py): it reads the
token and the body itself and stages an event encoded in one step, with the answers, the event
and the outbox entry of the FastAPI-and-pydantic way. Built without connecting."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from services.contracts import SessionOutcome, encode_event
from services.contracts.reference import Channel, HelpChannel
from services.kvik import domain
from services.kvik.app import create_app
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore
from services.plumbing.outbox import Outbox
from services.plumbing.settings import HubSettings

NOW = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)
DEVICE = {"Authorization": "Bearer kvk_" + "a" * 43}
SOURCE = "/kanalhub/kvik"


def _session(**changes: Any) -> domain.Session:
    values: dict[str, Any] = {
        "session_id": "2f1c7c52-8f0e-4d57-9a43-3f6f0b7d5e11",
        "kiosk_id": "kiosk-1",
        "service": "passport",
        "started_at": NOW - dt.timedelta(minutes=10),
        "ended_at": NOW - dt.timedelta(minutes=2),
        "steps": ("identify", "form"),
        "outcome": SessionOutcome.COMPLETED,
        "help": HelpChannel.VIDEO,
    }
    return domain.Session(**(values | changes))


def _without_id(raw: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(raw)
    document.pop("id")
    return document


async def _post(body: bytes, headers: dict[str, str]) -> httpx.Response:
    app = create_app(KvikSettings(background_tasks=False))
    # No lifespan and no store: every case here is answered before the store is reached.
    app.state.kvik = None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kvik") as client:
        return await client.post("/sessions", content=body, headers=headers)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"outcome": SessionOutcome.ABANDONED, "help": HelpChannel.NONE},
        {"outcome": SessionOutcome.REFERRED, "referred_to": Channel.PHONE},
    ],
)
def test_the_encoded_session_event_is_the_validated_one(changes: dict[str, Any]) -> None:
    session = _session(**changes)
    record = domain.session_record(session, "kvik-1", "valby", SOURCE)
    event = domain.session_event(session, "kvik-1", "valby", SOURCE)
    assert _without_id(record.value) == _without_id(encode_event(event))


def test_the_encoded_session_event_still_refuses_a_cpr_looking_step() -> None:
    with pytest.raises(ValidationError, match="CPR"):
        domain.session_record(_session(steps=("s_0102031234",)), "kvik-1", "valby", SOURCE)


async def test_an_encoded_event_is_staged_as_the_outbox_stages_the_event() -> None:
    hub = HubSettings(topic_suffix=".t1")
    redis = Redis()  # never connected: scripts are only registered
    outbox = Outbox(redis, hub, "kvik")
    store = KvikStore(redis, hub, outbox)
    event = domain.session_event(_session(), "kvik-1", "valby", SOURCE)
    record = domain.session_record(_session(), "kvik-1", "valby", SOURCE)
    twin = domain.session_event(_session(), "kvik-1", "valby", SOURCE).model_copy(
        update={"id": record.id}
    )
    assert store._event_args(record) == store._event_args(twin)
    assert store._event_args(record) != store._event_args(event)  # its own id, not the twin's
    await redis.aclose()


async def test_a_body_that_is_not_json_is_refused_in_fastapis_words() -> None:
    response = await _post(b'{"session_id": ', DEVICE | {"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "body",
            "message": "The body is not valid JSON: Expecting value (at character 15)",
        }
    ]


async def test_an_invalid_session_names_each_field_under_body() -> None:
    response = await _post(
        json.dumps({"kiosk_id": "kiosk-1", "outcome": "x", "extra": 1}).encode(),
        DEVICE | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"body.session_id", "body.outcome", "body.extra"} <= fields


async def test_an_empty_body_is_a_missing_body() -> None:
    response = await _post(b"", DEVICE | {"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "message": "Field required"}]


async def test_a_body_that_is_not_declared_json_is_refused() -> None:
    response = await _post(b'{"kiosk_id": "kiosk-1"}', DEVICE | {"Content-Type": "text/plain"})
    # services/plumbing/content_types.py: refused before the route reads token or body.
    assert response.status_code == 415
    assert response.json()["type"].endswith("/unsupported-media-type")
    assert response.headers["Accept"] == "application/json"


async def test_a_persons_token_is_refused_before_the_body_is_read() -> None:
    response = await _post(
        b"{", {"Authorization": "Bearer eyJhbGciOi.x.y", "Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["type"].endswith("/token-invalid")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_post_without_a_token_is_refused() -> None:
    response = await _post(b"{}", {"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json()["type"].endswith("/token-missing")
