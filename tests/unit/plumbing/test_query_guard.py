"""The query guard on a tiny app: an undeclared or repeated single-valued query parameter is a
400 problem naming it, before anything of the operation runs; what is declared (through
sub-dependencies, router dependencies, query models and aliases) passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from services.plumbing.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from services.plumbing.query_guard import PROBLEM_SLUG, QueryGuard

UNGUARDED = "/oauth2-redirect"


class Filters(BaseModel):
    colour: str | None = None
    size: int | None = None


def _ran(request: Request, what: str) -> None:
    request.app.state.ran.append(what)


# Dependencies live at module level: with postponed annotations FastAPI resolves a dependency's
# annotations in the module's namespace.
def tenant(request: Request, tenant: str | None = None) -> str | None:
    _ran(request, "tenant")
    return tenant


def token(request: Request, token: str | None = None) -> str | None:
    _ran(request, "token")
    return token


def caller(request: Request, t: Annotated[str | None, Depends(token)], scope: str = "read") -> str:
    _ran(request, "caller")
    return scope


def build_app() -> tuple[FastAPI, list[str]]:
    """The app and the names of what ran (dependencies and handlers), in order."""
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(QueryGuard, routes=app.router.routes, unguarded_paths=[UNGUARDED])
    ran: list[str] = []
    app.state.ran = ran

    @app.get("/plain")
    async def plain(period: str = "week", date: str | None = None) -> dict[str, str]:
        ran.append("plain")
        return {"period": period}

    @app.get("/list")
    async def listed(week: Annotated[list[str], Query()]) -> dict[str, int]:
        ran.append("list")
        return {"weeks": len(week)}

    @app.get("/auth")
    async def authed(who: Annotated[str, Depends(caller)]) -> dict[str, str]:
        ran.append("auth")
        return {"scope": who}

    @app.get("/model")
    async def model(filters: Annotated[Filters, Query()]) -> dict[str, Any]:
        ran.append("model")
        return filters.model_dump()

    @app.get("/alias")
    async def alias(q: Annotated[str | None, Query(alias="search")] = None) -> dict[str, Any]:
        ran.append("alias")
        return {"q": q}

    @app.get(UNGUARDED)
    async def redirect() -> dict[str, str]:
        ran.append("redirect")
        return {}

    async def raw(request: Request) -> PlainTextResponse:
        ran.append("raw")
        return PlainTextResponse("raw")

    app.add_route("/raw", raw)

    router = APIRouter(prefix="/tenants", dependencies=[Depends(tenant)])

    @router.get("/things")
    async def things(limit: int = 10) -> dict[str, int]:
        ran.append("things")
        return {"limit": limit}

    app.include_router(router)
    return app, ran


@pytest.fixture
def app_and_ran() -> tuple[FastAPI, list[str]]:
    return build_app()


@pytest.fixture
async def client(app_and_ran: tuple[FastAPI, list[str]]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_and_ran[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def ran(app_and_ran: tuple[FastAPI, list[str]]) -> list[str]:
    return app_and_ran[1]


def _refused(response: httpx.Response) -> dict[str, str]:
    """The refusal's errors by field; fails unless it is the guard's 400 problem."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body = response.json()
    assert body["type"].endswith(PROBLEM_SLUG)
    return {error["field"]: error["message"] for error in body["errors"]}


async def test_an_unknown_parameter_is_refused_naming_it_and_what_the_operation_takes(
    client: httpx.AsyncClient, ran: list[str]
) -> None:
    response = await client.get("/plain", params={"period": "week", "entry_id": "bs-valby"})
    assert _refused(response) == {
        "query.entry_id": "Unknown query parameter; this operation takes: period, date"
    }
    assert ran == []


async def test_declared_parameters_pass(client: httpx.AsyncClient, ran: list[str]) -> None:
    response = await client.get("/plain", params={"period": "month", "date": "2024-01-01"})
    assert response.status_code == 200
    assert ran == ["plain"]


async def test_each_unknown_parameter_is_named_once(client: httpx.AsyncClient) -> None:
    response = await client.get("/plain?a=1&b=2&a=3")
    assert set(_refused(response)) == {"query.a", "query.b"}


async def test_a_single_valued_parameter_given_twice_is_refused(
    client: httpx.AsyncClient, ran: list[str]
) -> None:
    response = await client.get("/plain?date=2024-01-01&date=2024-02-01")
    assert _refused(response) == {
        "query.date": "Given 2 times; this parameter takes a single value"
    }
    assert ran == []


async def test_a_list_parameter_may_be_repeated(client: httpx.AsyncClient) -> None:
    response = await client.get("/list?week=2024-01-01&week=2024-01-08")
    assert response.status_code == 200
    assert response.json() == {"weeks": 2}


async def test_parameters_of_sub_dependencies_are_declared(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth", params={"token": "t", "scope": "write"})
    assert response.status_code == 200
    assert response.json() == {"scope": "write"}


async def test_a_refused_request_runs_no_dependency(
    client: httpx.AsyncClient, ran: list[str]
) -> None:
    response = await client.get("/auth", params={"token": "t", "tokn": "typo"})
    assert _refused(response) == {
        "query.tokn": "Unknown query parameter; this operation takes: scope, token"
    }
    assert ran == []


async def test_parameters_of_router_dependencies_are_declared(
    client: httpx.AsyncClient,
) -> None:
    ok = await client.get("/tenants/things", params={"tenant": "kk", "limit": 5})
    assert ok.status_code == 200
    refused = await client.get("/tenants/things", params={"tennant": "kk"})
    assert _refused(refused) == {
        "query.tennant": "Unknown query parameter; this operation takes: limit, tenant"
    }


async def test_the_fields_of_a_query_model_are_declared(client: httpx.AsyncClient) -> None:
    ok = await client.get("/model", params={"colour": "red", "size": 3})
    assert ok.json() == {"colour": "red", "size": 3}
    refused = await client.get("/model", params={"filters": "x"})
    assert set(_refused(refused)) == {"query.filters"}


async def test_an_alias_is_the_name_that_is_declared(client: httpx.AsyncClient) -> None:
    assert (await client.get("/alias", params={"search": "x"})).json() == {"q": "x"}
    assert set(_refused(await client.get("/alias", params={"q": "x"}))) == {"query.q"}


async def test_a_plain_starlette_route_takes_no_parameters(
    client: httpx.AsyncClient, ran: list[str]
) -> None:
    assert (await client.get("/raw")).status_code == 200
    response = await client.get("/raw?x=1")
    assert _refused(response) == {"query.x": "Unknown query parameter; this operation takes none"}
    assert ran == ["raw"]


async def test_an_unguarded_path_takes_anything(client: httpx.AsyncClient) -> None:
    response = await client.get(UNGUARDED, params={"code": "c", "state": "s", "iss": "i"})
    assert response.status_code == 200


async def test_no_route_and_wrong_method_keep_their_404_and_405(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/nowhere?x=1")).status_code == 404
    assert (await client.post("/plain?x=1")).status_code == 405


async def test_a_route_added_after_the_app_started_serving_is_guarded(
    app_and_ran: tuple[FastAPI, list[str]], client: httpx.AsyncClient
) -> None:
    app, _ = app_and_ran
    assert (await client.get("/plain")).status_code == 200  # builds the middleware stack

    @app.get("/late")
    async def late(n: int = 1) -> dict[str, int]:
        return {"n": n}

    assert (await client.get("/late?n=2")).status_code == 200
    assert set(_refused(await client.get("/late?m=2"))) == {"query.m"}


@pytest.mark.parametrize(
    "name",
    ["010190-1234", "x" * 65, "a b", "<script>"],
    ids=["cpr", "long", "space", "markup"],
)
async def test_a_name_that_is_not_a_plain_parameter_name_is_not_echoed(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await client.get("/plain", params={name: "1"})
    errors = _refused(response)
    assert list(errors) == ["query"]
    assert name not in response.text


def test_every_operation_documents_the_400_problem(
    app_and_ran: tuple[FastAPI, list[str]],
) -> None:
    document = app_and_ran[0].openapi()
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert operations
    for operation in operations:
        content = operation["responses"]["400"]["content"]
        assert list(content) == [PROBLEM_MEDIA_TYPE]
