"""A body must come with a media type its operation takes (services/plumbing/content_types.py):
else 415 problem+json before anything of the operation runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from services.plumbing.content_types import accepts
from services.plumbing.http import create_service_app
from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    service = "probe"


class Thing(BaseModel):
    name: str


def _probe() -> tuple[FastAPI, list[str]]:
    acted: list[str] = []
    router = APIRouter()

    @router.post("/things")
    async def post_thing(thing: Thing) -> dict[str, str]:
        acted.append("json")
        return {"name": thing.name}

    @router.post(
        "/things/csv",
        openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {}}}}},
    )
    async def post_csv(request: Request) -> dict[str, int]:
        acted.append("csv")
        return {"bytes": len(await request.body())}

    @router.post("/things/{name}/confirm")
    async def confirm(name: str) -> dict[str, str]:
        acted.append("confirm")
        return {"confirmed": name}

    app = create_service_app(ProbeSettings(), title="probe", description="p", routers=[router])
    return app, acted


async def _send(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        return await client.request(method, path, **kwargs)


@pytest.mark.parametrize(
    ("declared", "sent", "accepted"),
    [
        (("application/json",), "application/json", True),
        (("application/json",), "Application/JSON; charset=utf-8", True),
        (("application/json",), "application/merge-patch+json", True),
        (("application/json",), "text/plain", False),
        (("application/json",), "application/jsonp", False),
        (("application/json",), "text/json+json", False),
        (("application/json",), None, False),
        (("application/json",), "", False),
        (("text/csv",), "text/csv; charset=utf-8", True),
        (("text/csv",), "application/json", False),
        (("application/json", "text/csv"), "text/csv", True),
    ],
)
def test_which_content_types_an_operation_accepts(
    declared: tuple[str, ...], sent: str | None, accepted: bool
) -> None:
    assert accepts(declared, sent) is accepted


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}],
)
async def test_a_json_body_of_another_or_no_type_is_415_and_nothing_runs(
    headers: dict[str, str],
) -> None:
    app, acted = _probe()
    answer = await _send(app, "POST", "/things", content=b'{"name": "a"}', headers=headers)
    assert answer.status_code == 415
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.headers["accept"] == "application/json"
    problem = answer.json()
    assert problem["type"].endswith("/unsupported-media-type")
    assert "application/json" in problem["detail"]
    assert problem["instance"] == "/things"
    assert acted == []


async def test_a_json_body_with_charset_is_taken() -> None:
    app, acted = _probe()
    answer = await _send(
        app,
        "POST",
        "/things",
        content=b'{"name": "a"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert (answer.status_code, acted) == (200, ["json"])


async def test_a_csv_route_takes_csv_and_refuses_json_naming_csv() -> None:
    app, acted = _probe()
    csv = await _send(
        app, "POST", "/things/csv", content=b"a,b\n", headers={"Content-Type": "text/csv"}
    )
    json = await _send(app, "POST", "/things/csv", json={"a": 1})
    assert (csv.status_code, json.status_code) == (200, 415)
    assert json.headers["accept"] == "text/csv"
    assert "text/csv" in json.json()["detail"]
    assert acted == ["csv"]


async def test_the_sent_content_type_is_not_echoed() -> None:
    app, _ = _probe()
    answer = await _send(
        app, "POST", "/things", content=b"{}", headers={"Content-Type": "text/x-0101901234"}
    )
    assert answer.status_code == 415
    assert "0101901234" not in answer.text


async def test_bodyless_writes_are_not_checked() -> None:
    app, acted = _probe()
    answer = await _send(app, "POST", "/things/a/confirm")
    assert (answer.status_code, acted) == (200, ["confirm"])


async def test_an_unknown_path_is_still_404_and_a_wrong_method_405() -> None:
    app, _ = _probe()
    missing = await _send(app, "POST", "/nothing", content=b"x", headers={"Content-Type": "a/b"})
    wrong = await _send(app, "PUT", "/things", content=b"x", headers={"Content-Type": "a/b"})
    assert (missing.status_code, wrong.status_code) == (404, 405)


def test_the_openapi_document_declares_415_for_body_operations_only() -> None:
    app, _ = _probe()
    paths = app.openapi()["paths"]
    assert "415" in paths["/things"]["post"]["responses"]
    assert "415" in paths["/things/csv"]["post"]["responses"]
    assert "415" not in paths["/things/{name}/confirm"]["post"]["responses"]
