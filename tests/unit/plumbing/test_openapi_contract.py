"""The OpenAPI documents of the four services declare what the servers enforce: If-Match
(required, its form) on every operation that answers 428 and 428 only there, the
Idempotency-Key's format wherever it is read, and array limits as maxItems/minItems, never
maxLength."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Header

from services.plumbing.openapi_contract import (
    IDEMPOTENCY_KEY_SCHEMA,
    IF_MATCH_SCHEMA,
    document_enforced_rules,
)
from services.plumbing.problems import install_problem_handlers, problem_responses
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, create_app, service_settings


@pytest.fixture(scope="module", params=list(SERVICES))
def document(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name: str = request.param
    return name, create_app(name, service_settings(name, HubSettings())).openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _header(operation: dict[str, Any], name: str) -> dict[str, Any] | None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == name:
            return dict(parameter)
    return None


def test_every_operation_answering_428_declares_if_match_as_required(
    document: tuple[str, dict[str, Any]],
) -> None:
    name, doc = document
    wrong = []
    for operation_name, operation in _operations(doc):
        header = _header(operation, "if-match")
        answers_428 = "428" in operation["responses"]
        if answers_428 != (header is not None):
            wrong.append(f"{operation_name}: 428 {answers_428}, If-Match {header is not None}")
        elif header is not None and not (
            header["required"] and header["schema"]["pattern"] == IF_MATCH_SCHEMA["pattern"]
        ):
            wrong.append(f"{operation_name}: If-Match {header}")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)


def test_the_registry_declares_if_match_on_its_replaces_and_retires() -> None:
    doc = create_app("registry", service_settings("registry", HubSettings())).openapi()
    with_if_match = {
        operation_name
        for operation_name, operation in _operations(doc)
        if _header(operation, "if-match") is not None
    }
    assert with_if_match == {
        f"{method} {path}"
        for method in ("PUT", "DELETE")
        for path in ("/services/{code}", "/sites/{site_id}", "/entries/{entry_id}")
    }


def test_the_idempotency_key_has_its_format_wherever_it_is_read(
    document: tuple[str, dict[str, Any]],
) -> None:
    name, doc = document
    headers = [
        (operation_name, header)
        for operation_name, operation in _operations(doc)
        if (header := _header(operation, "idempotency-key")) is not None
    ]
    if name == "mobile":
        assert headers, "the mobile service reads Idempotency-Key on its writes"
    for operation_name, header in headers:
        schema = header["schema"]
        assert {k: schema[k] for k in IDEMPOTENCY_KEY_SCHEMA} == IDEMPOTENCY_KEY_SCHEMA, (
            operation_name
        )
        assert not header.get("required", False), operation_name


def _arrays(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "array":
            yield where, node
        for key, value in node.items():
            yield from _arrays(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _arrays(value, f"{where}/{index}")


def test_no_array_schema_carries_a_string_length(document: tuple[str, dict[str, Any]]) -> None:
    name, doc = document
    wrong = [where for where, node in _arrays(doc, name) if {"maxLength", "minLength"} & set(node)]
    assert not wrong


def test_the_mobile_limits_on_staff_and_services_are_max_items() -> None:
    doc = create_app("mobile", service_settings("mobile", HubSettings())).openapi()
    visit = doc["components"]["schemas"]["VisitIn"]["properties"]
    assert (visit["staff"]["maxItems"], visit["services"]["maxItems"]) == (20, 50)
    assert visit["services"]["minItems"] == 1


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("6f1c0c1e-3c55-4a8e-9d6b-2f0e3a1b9c01", True),
        ('"a"', True),
        ("x" * 255, True),
        ('"' + "x" * 255 + '"', True),
        ("x" * 256, False),
        ('""', False),
        ("", False),
        ("tab\there", False),
    ],
)
def test_the_declared_key_format_is_what_the_server_takes(key: str, valid: bool) -> None:
    # The server's rule (services/plumbing/idempotency.py): 1-255 printable ASCII characters,
    # plain or in double quotes.
    assert bool(re.fullmatch(IDEMPOTENCY_KEY_SCHEMA["pattern"], key)) is valid


def test_an_operation_without_if_match_drops_a_documented_428() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    document_enforced_rules(app)

    @app.post("/things", responses=problem_responses(409, 428))
    async def add() -> None:
        return None

    @app.put("/things/{thing}", responses=problem_responses(428))
    async def replace(thing: str, if_match: str | None = Header(default=None)) -> None:
        return None

    paths = app.openapi()["paths"]
    assert "428" not in paths["/things"]["post"]["responses"]
    assert "409" in paths["/things"]["post"]["responses"]
    assert "428" in paths["/things/{thing}"]["put"]["responses"]
