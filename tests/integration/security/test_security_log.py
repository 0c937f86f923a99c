"""Refused authentications and authorisations are logged as security events, with their reason,
route, method, client address and (once the token verified) the pseudonymous actor - and no
token, nor any part of one, ever appears in the log (services/plumbing/security_log.py; ASVS
7.1.1, 7.2.1, 7.2.2).

The log is read as it is written in production: JSON lines on stderr, from the logging the
service's lifespan configures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.plumbing.auth import Role, mint_token
from services.plumbing.pseudonyms import pseudonymous_id
from services.plumbing.security_log import AUTH_REFUSED
from services.plumbing.settings import HubSettings
from tests.integration.kvik.conftest import kvik_settings, running
from tests.integration.security.role_table import read_table
from tests.integration.security.services import SERVICES, fill, running_service
from tests.support.tokens import bearer

pytestmark = pytest.mark.integration

CLIENT = "198.51.100.23"
OTHER_CLIENT = "198.51.100.24"
SUBJECT = "subject-4d2e9b7f1c"
"""A distinctive ``sub``: it must never be logged, only its pseudonymous id."""
MARKER = "tok3n-marker-6f1e0c9a5b"
"""Part of every made-up token, so any echo of one is found."""


def _json_hub(hub: HubSettings) -> HubSettings:
    return hub.model_copy(update={"log_format": "json"})


def _log_lines(output: str) -> list[dict[str, Any]]:
    lines = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            lines.append(entry)
    return lines


def _refusals(output: str) -> list[dict[str, Any]]:
    return [line for line in _log_lines(output) if line.get("event") == AUTH_REFUSED]


def _leaks(output: str, tokens: list[str]) -> list[str]:
    """Every token, or any dot-separated part of one (a JWT's header, claims or signature),
    found in ``output``; and the raw subject and the marker."""
    parts = {part for token in tokens for part in [token, *token.split(".")] if len(part) >= 8}
    return sorted(part for part in parts | {SUBJECT, MARKER} if part in output)


def _person_route(service: str) -> tuple[str, str, str]:
    """(METHOD, path template, a role it needs) of the service's first route for people."""
    rule = next(r for r in read_table() if r.service == service and r.roles)
    return rule.method, rule.path, sorted(rule.roles)[0]


@asynccontextmanager
async def _client(app: Any, name: str, address: str = CLIENT) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40_123))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
        yield client


@pytest.mark.parametrize("name", list(SERVICES))
async def test_refused_people_are_logged_with_their_reason_and_no_token_is_ever_logged(
    name: str, hub_settings: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = _json_hub(hub_settings)
    method, template, role = _person_route(name)
    path = fill(template)
    other_key = hub.model_copy(update={"jwt_secret": SecretStr("another-secret-" + "k" * 40)})
    elsewhere = hub.model_copy(update={"jwt_audience": "another-audience"})
    tokens = {
        "expired": mint_token(hub, SUBJECT, [role], ttl_seconds=-3600),
        "bad signature": mint_token(other_key, SUBJECT, [role]),
        "wrong audience": mint_token(elsewhere, SUBJECT, [role]),
        "no role": mint_token(hub, SUBJECT, []),
        "accepted": mint_token(hub, SUBJECT, list(Role)),
    }
    sent: list[tuple[dict[str, str], str | None]] = [
        ({}, "no token"),
        ({"Authorization": f"Basic {MARKER}"}, "malformed authorization header"),
        ({"Authorization": f"Bearer {MARKER}"}, "not a JWT"),
        *(
            ({"Authorization": f"Bearer {tokens[kind]}"}, kind)
            for kind in ("expired", "bad signature", "wrong audience")
        ),
        ({"Authorization": f"Bearer {tokens['no role']}"}, f"role missing: {role}"),
        ({"Authorization": f"Bearer {tokens['accepted']}"}, None),
    ]
    capsys.readouterr()
    async with running_service(name, hub) as (app, _), _client(app, name) as client:
        statuses = [
            (await client.request(method, path, headers=headers)).status_code for headers, _ in sent
        ]
        accepted = await client.get(
            "/healthz", headers={"Authorization": f"Bearer {tokens['accepted']}"}
        )
    output = capsys.readouterr().err
    expected = [reason for _, reason in sent if reason is not None]
    assert statuses[:-1] == [401] * (len(expected) - 1) + [403]
    assert statuses[-1] not in {401, 403}
    assert accepted.status_code == 200
    refusals = _refusals(output)
    assert [entry["reason"] for entry in refusals] == expected, output[-2000:]
    for entry in refusals:
        assert entry["level"] == "warning"
        assert (entry["route"], entry["method"], entry["client"]) == (template, method, CLIENT)
        assert entry["status"] in {401, 403}
        assert entry["request_id"]
    # Only the refusal after a verified token names who asked, and pseudonymously.
    actors = [entry["actor"] for entry in refusals]
    assert actors == [None] * (len(expected) - 1) + [pseudonymous_id(hub.subject_key, SUBJECT)]
    assert _leaks(output, list(tokens.values())) == []


async def test_device_token_refusals_are_logged_and_no_device_token_is_ever_logged(
    hub_settings: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = kvik_settings(_json_hub(hub_settings), failed_token_attempts_per_minute=2)
    heartbeat = {"software_version": "2.4.1", "state": "ready"}
    unknown = bearer(f"kvk_{MARKER}")
    capsys.readouterr()
    async with running(settings) as kvik:
        await kvik.seed()
        device = await kvik.register("kiosk-log-01")
        admin_token = kvik.admin["Authorization"].removeprefix("Bearer ")
        async with _client(kvik.app, "kvik") as client:
            answers = [
                await client.post("/kiosks/kiosk-log-01/heartbeat", json=heartbeat),
                await client.post(
                    "/kiosks/kiosk-log-01/heartbeat", json=heartbeat, headers=kvik.admin
                ),
                *[
                    await client.post(
                        "/kiosks/kiosk-log-01/heartbeat", json=heartbeat, headers=unknown
                    )
                    for _ in range(3)
                ],
                await client.post(
                    "/kiosks/kiosk-other/heartbeat", json=heartbeat, headers=bearer(device)
                ),
                await client.post(
                    "/kiosks/kiosk-log-01/heartbeat", json=heartbeat, headers=bearer(device)
                ),
            ]
            revoked = await client.delete("/kiosks/kiosk-log-01/token", headers=kvik.admin)
        # From another address: this one is past its limit of unknown tokens by now.
        async with _client(kvik.app, "kvik", OTHER_CLIENT) as client:
            after_revocation = await client.post(
                "/kiosks/kiosk-log-01/heartbeat", json=heartbeat, headers=bearer(device)
            )
    output = capsys.readouterr().err
    statuses = [answer.status_code for answer in answers]
    assert statuses == [401, 401, 401, 401, 429, 403, 200], [a.text for a in answers]
    assert (revoked.status_code, after_revocation.status_code) == (200, 401)
    refusals = _refusals(output)
    assert [(entry["reason"], entry["status"]) for entry in refusals] == [
        ("no token", 401),
        ("not a device token", 401),
        ("unknown device token", 401),
        ("unknown device token", 401),
        ("too many unknown device tokens", 429),
        ("other kiosk", 403),
        # A revoked kiosk's token is forgotten with the revocation: unknown from then on.
        ("unknown device token", 401),
    ], output[-2000:]
    assert {entry["route"] for entry in refusals} == {"/kiosks/{kiosk_id}/heartbeat"}
    assert [entry["client"] for entry in refusals] == [CLIENT] * 6 + [OTHER_CLIENT]
    assert refusals[5]["actor"] == "kiosk:kiosk-log-01"
    assert _leaks(output, [device, admin_token, f"kvk_{MARKER}"]) == []
