"""The OpenAPI document says what the server enforces, so a client generated from it works.

FastAPI derives the document from the code, and three things come out wrong:

- ``If-Match`` is read as an optional header (the server answers 428 Precondition Required
  without it, not 422): the document declares it required, with the form it takes, and 428
  is documented on exactly the operations that read it.
- ``Idempotency-Key`` is read as an optional string checked in code (400 when it is not 1-255
  printable ASCII characters, plain or as a quoted structured-field string): the document
  gives that format.
- a length limit put on an array through an annotated type (``Annotated[Codes,
  Field(max_length=100)]``) comes out as ``maxLength``, which applies to strings only, so
  every validator ignores it: on an array it is ``maxItems``/``minItems``.

:func:`document_enforced_rules` wraps ``app.openapi`` to fix all three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from fastapi import FastAPI

IF_MATCH: Final = "if-match"
IDEMPOTENCY_KEY: Final = "idempotency-key"

IF_MATCH_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    # What the server reads as a version: the ETag it sent (``"3"``), weak or not; anything
    # else is 412.
    "pattern": r'^[ \t]*(?:W/)?"*[0-9]+"*[ \t]*$',
    "examples": ['"3"'],
}
IDEMPOTENCY_KEY_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    # 1-255 printable ASCII characters, or the same in double quotes (a structured-field
    # string); "" alone is an empty key.
    "pattern": r'^(?!""$)(?:"[ -~]{1,255}"|[ -~]{1,255})$',
    "minLength": 1,
    "maxLength": 257,
    "examples": ["6f1c0c1e-3c55-4a8e-9d6b-2f0e3a1b9c01"],
}
_PRECONDITION_REQUIRED: Final = "428"


def document_enforced_rules(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document declare the headers and array limits the server
    enforces (see the module docstring)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        for operation in _operations(document):
            _declare_headers(operation)
        _array_limits(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                yield operation


def _declare_headers(operation: dict[str, Any]) -> None:
    reads_if_match = False
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "header":
            continue
        name = str(parameter.get("name", "")).lower()
        if name == IF_MATCH:
            reads_if_match = True
            parameter["name"] = "If-Match"
            parameter["required"] = True
            parameter["schema"] = {
                **IF_MATCH_SCHEMA,
                "description": parameter.get("description", ""),
            }
        elif name == IDEMPOTENCY_KEY:
            parameter["schema"] = {
                **IDEMPOTENCY_KEY_SCHEMA,
                "description": parameter.get("description", ""),
            }
    responses: dict[str, Any] = operation["responses"]
    if not reads_if_match:
        # An operation that does not read If-Match never answers 428.
        responses.pop(_PRECONDITION_REQUIRED, None)


def _array_limits(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "array":
            for length, items in (("maxLength", "maxItems"), ("minLength", "minItems")):
                if length in node:
                    node.setdefault(items, node.pop(length))
        for value in node.values():
            _array_limits(value)
    elif isinstance(node, list):
        for value in node:
            _array_limits(value)
