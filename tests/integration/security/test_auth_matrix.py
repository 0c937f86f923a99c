"""The auth matrix, generated from the role x route table in ``docs/security.md``.

The table lists every route of every service (nothing more, nothing less: checked against each
app's OpenAPI document and its routes outside it), and each route lets in exactly the roles the
table names: every other role gets 403, no token, a garbage token and an expired token 401;
device routes refuse every person's token with 401; public routes need no token. A refused
call stages nothing. So the document and the code cannot drift."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.plumbing.auth import Role, mint_token
from services.plumbing.settings import HubSettings
from tests.integration.security.role_table import (
    CONFIGURED,
    DEVICE,
    PUBLIC,
    RouteRule,
    read_table,
)
from tests.integration.security.services import (
    SERVICES,
    WRITES,
    create_app,
    fill,
    routes,
    running_service,
    service_settings,
    staged,
)

pytestmark = pytest.mark.integration

TABLE = read_table()
ROLES = [role.value for role in Role]


@pytest.fixture(params=list(SERVICES))
async def service(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    name = request.param
    async with running_service(name, hub_settings) as (app, client):
        yield name, app, client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _call(
    client: httpx.AsyncClient, app: FastAPI, rule: RouteRule, headers: dict[str, str]
) -> httpx.Response:
    operation = app.openapi()["paths"].get(rule.path, {}).get(rule.method.lower(), {})
    declared = list(operation.get("requestBody", {}).get("content", {}))
    if declared and "application/json" not in declared:
        # A body of another type is refused (415) before auth, as an oversized one (413) is
        # (services/plumbing/content_types.py): send one of the type the operation takes.
        typed = {**headers, "Content-Type": declared[0]}
        return await client.request(rule.method, fill(rule.path), headers=typed, content=b"\n")
    body: dict[str, str] | None = {} if rule.method.lower() in WRITES else None
    return await client.request(rule.method, fill(rule.path), headers=headers, json=body)


def test_the_table_names_only_known_roles_and_kinds_of_access() -> None:
    unknown = {(rule.key, role) for rule in TABLE for role in rule.roles if role not in set(ROLES)}
    assert not unknown, f"roles not in services.plumbing.auth.Role: {sorted(unknown)}"
    assert {rule.service for rule in TABLE} == set(SERVICES)


@pytest.mark.parametrize("name", list(SERVICES))
def test_the_table_lists_every_route_of_the_service_and_nothing_else(
    name: str, hub_settings: HubSettings
) -> None:
    app = create_app(name, service_settings(name, hub_settings))
    served = routes(app)
    listed = {(rule.method, rule.path) for rule in TABLE if rule.service == name}
    assert not served - listed, (
        f"{name}: routes missing from docs/security.md: {sorted(served - listed)}"
    )
    assert not listed - served, (
        f"{name}: rows for routes {name} does not serve: {sorted(listed - served)}"
    )


async def test_every_route_lets_in_exactly_the_roles_the_table_names(
    service: tuple[str, FastAPI, httpx.AsyncClient], hub_settings: HubSettings
) -> None:
    name, app, client = service
    tokens = {role: mint_token(hub_settings, "matrix-7f3a", [role]) for role in ROLES}
    expired = mint_token(hub_settings, "matrix-7f3a", ROLES, -120)
    rules = [rule for rule in TABLE if rule.service == name and rule.access != CONFIGURED]
    wrong: list[str] = []

    def expect(rule: RouteRule, who: str, response: httpx.Response, allowed: set[int]) -> None:
        if response.status_code not in allowed:
            wrong.append(f"{rule.method} {rule.path} as {who}: {response.status_code}")

    before = await staged(app)
    for rule in rules:
        if rule.access == PUBLIC:
            continue
        for who, headers in [
            ("no token", {}),
            ("a garbage token", _bearer("not-a-token")),
            ("an expired token", _bearer(expired)),
        ]:
            expect(rule, who, await _call(client, app, rule, headers), {401})
        for role in ROLES:
            if role in rule.roles:
                continue
            response = await _call(client, app, rule, _bearer(tokens[role]))
            # a device route refuses a person's token as not a device token
            expect(rule, role, response, {401} if rule.access == DEVICE else {403})
    assert await staged(app) == before, "a refused call staged an event"
    for rule in rules:
        granted: list[tuple[str, dict[str, str]]] = (
            [("no token", {})] if rule.access == PUBLIC else []
        )
        granted += [(role, _bearer(tokens[role])) for role in sorted(rule.roles)]
        for who, headers in granted:
            response = await _call(client, app, rule, headers)
            if response.status_code in {401, 403} or response.status_code >= 500:
                wrong.append(f"{rule.method} {rule.path} as {who}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
