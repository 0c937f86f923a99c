"""problem+json answers for every kind of error, and the request body size limit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from services.contracts.payloads.registry import Address
from services.plumbing.body_guards import BodySizeLimit
from services.plumbing.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldProblem,
    Problem,
    coordinate_problems,
    install_problem_handlers,
    problem_responses,
    validation_problem,
)

LIMIT = 1024
SECRET = "010190-1234"  # looks like a CPR number: must never be echoed back


class Item(BaseModel):
    service: str
    count: int = Field(ge=1)


class Order(BaseModel):
    items: list[Item]


def build_app() -> tuple[FastAPI, list[str]]:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=LIMIT)
    acted: list[str] = []

    @app.get("/problem", responses=problem_responses(409))
    async def raise_problem() -> None:
        raise Problem(
            409,
            "entry-exists",
            "Entry exists",
            detail="Entry 7 exists already.",
            errors=[FieldProblem(field="body.id", message="taken")],
            headers={"X-Hint": "yes"},
        )

    @app.post("/orders")
    async def post_order(order: Order) -> dict[str, int]:
        acted.append("orders")
        return {"items": len(order.items)}

    @app.post("/raw")
    async def post_raw(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        acted.append("raw")
        return {"size": size}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"database password is hunter2 for {SECRET}")

    return app, acted


@pytest.fixture
async def client_and_effects() -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    app, acted = build_app()
    # The catch-all handler answers, then Starlette re-raises for the server to log; a real
    # server swallows it, so the test transport must too.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, acted


@pytest.fixture
def client(client_and_effects: tuple[httpx.AsyncClient, list[str]]) -> httpx.AsyncClient:
    return client_and_effects[0]


async def test_raised_problem_answers_problem_json_with_status_title_detail_instance(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/problem")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["x-hint"] == "yes"
    assert response.json() == {
        "type": "https://kanalhub.dk/problems/entry-exists",
        "title": "Entry exists",
        "status": 409,
        "detail": "Entry 7 exists already.",
        "instance": "/problem",
        "errors": [{"field": "body.id", "message": "taken"}],
    }


async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/nowhere",
    }


async def test_wrong_method_is_a_405_problem_that_keeps_the_allow_header(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/orders")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["allow"] == "POST"


async def test_validation_error_lists_each_field_by_path_without_echoing_input(
    client_and_effects: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, acted = client_and_effects
    items = [{"service": "pas", "count": 1}] * 3 + [{"count": SECRET}, {"service": "x", "count": 0}]
    response = await client.post("/orders", json={"items": items})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == "https://kanalhub.dk/problems/validation-failed"
    assert problem["instance"] == "/orders"
    fields = {error["field"]: error["message"] for error in problem["errors"]}
    assert set(fields) == {"body.items[3].service", "body.items[3].count", "body.items[4].count"}
    assert fields["body.items[3].service"] == "Field required"
    assert "greater than or equal to 1" in fields["body.items[4].count"]
    assert SECRET not in response.text
    assert "input" not in response.text
    assert acted == []


async def test_body_that_is_not_json_is_a_422_problem_on_the_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/orders",
        content=b'{"items": [' + SECRET.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "body"
    assert error["message"].startswith("The body is not valid JSON")
    assert SECRET not in response.text


async def test_unhandled_exception_is_a_500_problem_without_the_exception_text(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="services.plumbing.problems"):
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["title"] == "Internal Server Error"
    assert problem["instance"] == "/boom"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    # ...but the log has it all, for whoever investigates.
    [record] = [r for r in caplog.records if r.name == "services.plumbing.problems"]
    assert record.exc_info is not None
    assert "RuntimeError" in record.getMessage()


async def test_request_id_from_request_state_is_in_the_problem() -> None:
    app, _ = build_app()

    async def with_request_id(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["request_id"] = "req-42"
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=with_request_id)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/problem")
    assert response.json()["request_id"] == "req-42"


async def test_declared_content_length_over_the_limit_is_refused_with_413_before_the_app(
    client_and_effects: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, acted = client_and_effects
    response = await client.post("/raw", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == "https://kanalhub.dk/problems/body-too-large"
    assert problem["status"] == 413
    assert problem["instance"] == "/raw"
    assert acted == []


@pytest.mark.parametrize("path", ["/raw", "/orders"])
async def test_chunked_body_over_the_limit_is_refused_with_413_while_streaming(
    client_and_effects: tuple[httpx.AsyncClient, list[str]], path: str
) -> None:
    client, acted = client_and_effects
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(20):
            sent.append(index)
            yield b"x" * 200

    response = await client.post(
        path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["type"] == "https://kanalhub.dk/problems/body-too-large"
    # Refused as soon as the limit was passed: 6 chunks of 200 bytes pass 1024.
    assert len(sent) == 6
    assert acted == []


async def test_body_under_the_limit_passes(
    client_and_effects: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, acted = client_and_effects

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 200

    streamed = await client.post("/raw", content=chunks())
    assert streamed.status_code == 200
    assert streamed.json() == {"size": 1000}
    declared = await client.post("/orders", json={"items": [{"service": "pas", "count": 2}]})
    assert declared.status_code == 200
    assert acted == ["raw", "orders"]


async def test_openapi_documents_problem_json_for_listed_statuses_and_validation() -> None:
    app, _ = build_app()
    document = app.openapi()
    ref = {"$ref": "#/components/schemas/ProblemDetail"}
    conflict = document["paths"]["/problem"]["get"]["responses"]["409"]
    assert conflict["content"] == {PROBLEM_MEDIA_TYPE: {"schema": ref}}
    invalid = document["paths"]["/orders"]["post"]["responses"]["422"]
    assert invalid["content"] == {PROBLEM_MEDIA_TYPE: {"schema": ref}}
    schemas = document["components"]["schemas"]
    assert {"ProblemDetail", "FieldProblem"} <= set(schemas)
    assert "HTTPValidationError" not in schemas


class Site(BaseModel):
    address: Address


async def test_a_contract_model_refusing_a_cpr_number_names_the_field_itself() -> None:
    # The contract's guard refuses at the (nested) model and names the field in ctx.
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/sites")
    async def post_site(site: Site) -> None:
        del site

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        address = {"street": f"Testvej {SECRET}", "postal_code": "2300", "city": "Valby"}
        response = await client.post("/sites", json={"address": address})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.address.street"]
    assert SECRET not in response.text


def test_a_validation_problem_counts_the_invalid_fields() -> None:
    one = validation_problem([FieldProblem(field="body.a", message="x")])
    two = validation_problem(
        [FieldProblem(field="body.a", message="x"), FieldProblem(field="body.b", message="y")]
    )
    assert (one.status, one.slug, one.detail) == (422, "validation-failed", "1 field is not valid.")
    assert two.detail == "2 fields are not valid."
    assert [e.field for e in two.errors or []] == ["body.a", "body.b"]


def test_a_validation_problem_keeps_a_detail_of_its_own() -> None:
    problem = validation_problem([FieldProblem(field="line 2", message="x")], detail="Nothing.")
    assert problem.detail == "Nothing."


def test_coordinates_outside_copenhagen_are_named_under_the_prefix() -> None:
    # Aarhus: right country, wrong city.
    problems = coordinate_problems(56.1567, 10.2108)
    assert {p.field for p in problems} == {"body.latitude", "body.longitude"}
    assert coordinate_problems(55.6759, 20.0, "body.place") == [
        FieldProblem(field="body.place.longitude", message="is outside Copenhagen's area")
    ]
    assert coordinate_problems(55.6759, 12.5700) == []
