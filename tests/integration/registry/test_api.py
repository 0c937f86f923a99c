"""The registry's API against the real broker and Valkey: versions, ETags, events, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.contracts import EventType
from services.plumbing.pseudonyms import pseudonymous_id
from services.registry.store import Kind
from tests.integration.registry.conftest import (
    EDITOR,
    ENTRY,
    SITE,
    Registry,
    create_basics,
    snapshot,
)
from tests.support.tokens import auth

pytestmark = pytest.mark.integration


async def test_an_entry_change_publishes_exactly_one_event_with_the_full_state(
    registry: Registry,
) -> None:
    await create_basics(registry)
    read = await registry.client.get("/entries/entry-test")
    changed = {**ENTRY, "name": "Borgerservice KVIK Testbiblioteket"}
    response = await registry.client.put(
        "/entries/entry-test",
        json=changed,
        headers={**registry.writer, "If-Match": read.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    events = await registry.events(expect=4)
    entry_events = [e for e in events if e.type is EventType.REGISTRY_ENTRY_UPSERTED]
    assert [e.data.model_dump(mode="json")["version"] for e in entry_events] == [1, 2]
    assert await registry.events_after(events) == []
    latest = entry_events[-1]
    assert latest.subject == "entry-test"
    assert latest.data.model_dump(mode="json") == {
        k: v for k, v in response.json().items() if k != "retired"
    }


async def test_reads_carry_the_version_as_etag(registry: Registry) -> None:
    await create_basics(registry)
    response = await registry.client.get("/sites/site-test")
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.json()["version"] == 1


async def test_a_stale_if_match_gets_412_and_changes_nothing(registry: Registry) -> None:
    await create_basics(registry)
    headers = {**registry.writer, "If-Match": '"1"'}
    first = await registry.client.put("/sites/site-test", json=SITE, headers=headers)
    assert first.status_code == 200
    before = await snapshot(registry)
    stale = await registry.client.put(
        "/sites/site-test", json={**SITE, "name": "Overwrite"}, headers=headers
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["ETag"] == '"2"'
    assert await snapshot(registry) == before


async def test_an_update_without_if_match_gets_428(registry: Registry) -> None:
    await create_basics(registry)
    response = await registry.client.put("/sites/site-test", json=SITE, headers=registry.writer)
    assert response.status_code == 428


async def test_concurrent_updates_with_the_same_if_match_have_exactly_one_winner(
    registry: Registry,
) -> None:
    await create_basics(registry)
    headers = {**registry.writer, "If-Match": '"1"'}
    responses = await asyncio.gather(
        *(
            registry.client.put(
                "/sites/site-test", json={**SITE, "name": f"Navn {i}"}, headers=headers
            )
            for i in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 7
    events = await registry.events(expect=4)
    site_versions = [
        e.data.model_dump()["version"] for e in events if e.type is EventType.REGISTRY_SITE_UPSERTED
    ]
    assert site_versions == [1, 2]


async def test_concurrent_creates_of_one_name_at_one_site_have_exactly_one_winner(
    registry: Registry,
) -> None:
    await create_basics(registry)  # "entry-test" holds ENTRY's name at the site already
    name = "Borgerservice KVIK Samme Navn"
    responses = await asyncio.gather(
        *(
            registry.client.post(
                "/entries",
                json={**ENTRY, "entry_id": f"entry-same-{i}", "name": name},
                headers=registry.writer,
            )
            for i in range(6)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [422] * 5
    listed = (await registry.client.get("/entries")).json()  # every status, closed included
    assert [e["entry_id"] for e in listed if e["name"] == name] == [
        next(r.json()["entry_id"] for r in responses if r.status_code == 201)
    ]


async def test_delete_retires_the_entry_keeps_it_closed_and_publishes_retired(
    registry: Registry,
) -> None:
    await create_basics(registry)
    response = await registry.client.delete(
        "/entries/entry-test", headers={**registry.writer, "If-Match": '"1"'}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    assert response.json()["retired"] is True
    assert (await registry.client.get("/entries/entry-test")).json()["version"] == 2
    events = await registry.events(expect=4)
    assert events[-1].type is EventType.REGISTRY_ENTRY_RETIRED
    assert events[-1].data.model_dump() == {"entry_id": "entry-test", "version": 2}


async def test_the_stored_audit_trail_names_each_editor_by_pseudonymous_id(
    registry: Registry,
) -> None:
    await create_basics(registry)
    other = auth(registry.settings, "registry:write", subject="editor-b2c9")
    await registry.client.put(
        "/entries/entry-test",
        json={**ENTRY, "status": "temporarily_closed"},
        headers={**other, "If-Match": '"1"'},
    )
    stored = await registry.store.audit(Kind.ENTRY, "entry-test")
    key = registry.settings.subject_key
    assert [(a["actor"], a["action"], a["version"]) for a in stored] == [
        (pseudonymous_id(key, "editor-7f3a"), "created", 1),
        (pseudonymous_id(key, "editor-b2c9"), "updated", 2),
    ]
    raw = await registry.store.redis.lrange(
        registry.store.audit_key(Kind.ENTRY, "entry-test"), 0, -1
    )
    assert not any(b"editor-7f3a" in r or b"editor-b2c9" in r for r in raw)


async def test_the_public_audit_trail_shows_no_actor(registry: Registry) -> None:
    await create_basics(registry)
    await registry.client.put(
        "/entries/entry-test",
        json={**ENTRY, "status": "temporarily_closed"},
        headers={**registry.writer, "If-Match": '"1"'},
    )
    response = await registry.client.get("/entries/entry-test/audit")
    trail = response.json()
    assert [(a["action"], a["version"]) for a in trail] == [("created", 1), ("updated", 2)]
    assert trail[1]["changed"] == ["status"]
    assert all("actor" not in a for a in trail)
    actor = pseudonymous_id(registry.settings.subject_key, "editor-7f3a")
    assert "editor-7f3a" not in response.text
    assert actor not in response.text


async def test_editors_see_the_audit_trail_with_each_changes_pseudonymous_actor(
    registry: Registry,
) -> None:
    await create_basics(registry)
    other = auth(registry.settings, "registry:write", subject="editor-b2c9")
    await registry.client.put(
        "/entries/entry-test",
        json={**ENTRY, "status": "temporarily_closed"},
        headers={**other, "If-Match": '"1"'},
    )
    response = await registry.client.get(
        "/entries/entry-test/audit/actors", headers=registry.writer
    )
    assert response.status_code == 200, response.text
    key = registry.settings.subject_key
    trail = response.json()
    assert [(a["actor"], a["action"], a["version"]) for a in trail] == [
        (pseudonymous_id(key, "editor-7f3a"), "created", 1),
        (pseudonymous_id(key, "editor-b2c9"), "updated", 2),
    ]
    assert trail[1]["changed"] == ["status"]
    assert "editor-b2c9" not in response.text


async def test_the_audit_trail_with_actors_needs_an_editor(registry: Registry) -> None:
    await create_basics(registry)
    path = "/entries/entry-test/audit/actors"
    assert (await registry.client.get(path)).status_code == 401
    reader = auth(registry.settings, "mobile:plan", subject=EDITOR)
    assert (await registry.client.get(path, headers=reader)).status_code == 403
    missing = await registry.client.get("/entries/entry-none/audit/actors", headers=registry.writer)
    assert missing.status_code == 404


BAD_ENTRIES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown district", {"district": "frederiksberg"}, "body.district"),
    ("unknown administration", {"administration": "xyz"}, "body.administration"),
    ("unknown service code", {"services": ["passport", "teleportation"]}, "body.services[1]"),
    ("unknown site", {"site_id": "site-nowhere"}, "body.site_id"),
    ("duplicate name at the site", {"name": ENTRY["name"].upper()}, "body.name"),
    (
        "inverted hours",
        {"opening_hours": {"weekly": [{"weekday": 0, "opens": "17:00", "closes": "09:00"}]}},
        "body.opening_hours.weekly[0]",
    ),
    (
        "overlapping hours",
        {
            "opening_hours": {
                "weekly": [
                    {"weekday": 0, "opens": "09:00", "closes": "12:00"},
                    {"weekday": 0, "opens": "11:00", "closes": "14:00"},
                ]
            }
        },
        "body.opening_hours.weekly[1]",
    ),
    ("local entry without district", {"district": None}, "body.district"),
    ("name too long", {"name": "x" * 201}, "body.name"),
]


@pytest.mark.parametrize(
    ("change", "field"),
    [(c, f) for _, c, f in BAD_ENTRIES],
    ids=[name for name, _, _ in BAD_ENTRIES],
)
async def test_a_bad_entry_gets_422_naming_the_field_and_changes_nothing(
    registry: Registry, change: dict[str, Any], field: str
) -> None:
    await create_basics(registry)
    before = await snapshot(registry)
    response = await registry.client.post(
        "/entries",
        json={**ENTRY, "entry_id": "entry-new", "name": "Another entry", **change},
        headers=registry.writer,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await snapshot(registry) == before


async def test_a_site_outside_copenhagen_gets_422_and_no_event(registry: Registry) -> None:
    response = await registry.client.post(
        "/sites", json={**SITE, "latitude": 56.1567, "longitude": 10.2108}, headers=registry.writer
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"body.latitude", "body.longitude"}
    assert await registry.events_after([]) == []


async def test_an_oversized_body_is_refused_and_changes_nothing(registry: Registry) -> None:
    body = {**SITE, "name": "x" * 2_000_000}
    response = await registry.client.post("/sites", json=body, headers=registry.writer)
    assert response.status_code == 413
    assert await snapshot(registry) == {}


async def test_a_write_without_a_token_gets_401(registry: Registry) -> None:
    response = await registry.client.post("/sites", json=SITE)
    assert response.status_code == 401
    assert await snapshot(registry) == {}


async def test_a_write_without_the_role_gets_403(registry: Registry) -> None:
    reader = auth(registry.settings, "metrics:read", subject=EDITOR)
    response = await registry.client.post("/sites", json=SITE, headers=reader)
    assert response.status_code == 403
    assert await snapshot(registry) == {}


async def test_reads_need_no_token(registry: Registry) -> None:
    await create_basics(registry)
    assert (await registry.client.get("/entries")).status_code == 200
    assert (await registry.client.get("/services/passport")).status_code == 200


async def test_creating_an_existing_id_gets_409(registry: Registry) -> None:
    await create_basics(registry)
    response = await registry.client.post("/sites", json=SITE, headers=registry.writer)
    assert response.status_code == 409


async def test_retiring_a_retired_entry_gets_409_and_publishes_nothing_more(
    registry: Registry,
) -> None:
    await create_basics(registry)
    retire = {**registry.writer, "If-Match": '"1"'}
    assert (await registry.client.delete("/entries/entry-test", headers=retire)).status_code == 200
    again = {**registry.writer, "If-Match": '"2"'}
    response = await registry.client.delete("/entries/entry-test", headers=again)
    assert response.status_code == 409
    events = await registry.events(expect=4)
    assert await registry.events_after(events) == []
