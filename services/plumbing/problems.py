"""RFC 9457 problem details: every error a kanalhub service answers is ``application/problem+json``.

Raise :class:`Problem` anywhere in a request (endpoint, dependency, domain call made from an
endpoint) to answer with a problem; :func:`install_problem_handlers` turns it, Starlette's
``HTTPException`` (404, 405 ...), request validation errors and unexpected exceptions into the same
shape. ``body_guards.BodySizeLimit`` refuses oversized bodies before anything parses them.

A problem body never carries what the client sent (inputs may hold personal data) nor anything
about the server's internals (exception text, stack traces).

Example body::

    {"type": "https://kanalhub.dk/problems/validation-failed", "title": "Request validation failed",
     "status": 422, "detail": "1 field is not valid.", "instance": "/sessions",
     "errors": [{"field": "body.items[3].service", "message": "Field required"}],
     "request_id": "4f1c..."}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.contracts.geography import OUTSIDE_MUNICIPALITY, outside_municipality
from services.plumbing.allowed_methods import allowed_methods
from services.plumbing.security_log import log_refusal

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://kanalhub.dk/problems/"
_SCHEMA_REF = "#/components/schemas/"


class FieldProblem(BaseModel):
    """One invalid field of a request."""

    field: str = Field(
        description='Where the field is, e.g. "body.items[3].service" or "query.limit".',
        examples=["body.items[3].service"],
    )
    message: str = Field(description="What is wrong with it, in words.")


class ProblemDetail(BaseModel):
    """An RFC 9457 problem details object, plus kanalhub's ``errors`` and ``request_id``."""

    type: str = Field(
        default="about:blank",
        description="A URI naming the kind of problem; about:blank means the status says it all.",
        examples=["https://kanalhub.dk/problems/validation-failed"],
    )
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.", ge=100, le=599)
    detail: str | None = Field(default=None, description="What went wrong with this request.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="For validation problems: each invalid field."
    )
    request_id: str | None = Field(
        default=None, description="Quote this when asking for help; it finds the server's logs."
    )


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_MEDIA_TYPE


class Problem(Exception):
    """Raise to answer the current request with a problem.

    ``slug`` names the kind of problem (``https://kanalhub.dk/problems/<slug>``); ``None`` gives
    ``about:blank``, for which RFC 9457 wants ``title`` to be the status phrase.
    ``detail`` is shown to the client: never put personal data or internals in it.
    ``refusal`` says why authentication or authorisation was refused, in a few fixed words
    (``expired``, ``role missing: kvik:admin``); such a problem, and every 401 and 403, is
    logged as a security event (``security_log``). Never put anything of a token in it.
    """

    def __init__(
        self,
        status: int,
        slug: str | None,
        title: str,
        detail: str | None = None,
        errors: Sequence[FieldProblem] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        refusal: str | None = None,
    ) -> None:
        # The exception text is what logs and tracebacks show: keep the client-facing detail
        # out of it, it may describe the client's input.
        super().__init__(f"{status} {slug or 'about:blank'}: {title}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers) if headers is not None else {}
        self.refusal = refusal

    @property
    def type(self) -> str:
        """The problem type URI."""
        return problem_type(self.slug)

    def to_response(self, request: Request) -> Response:
        """The problem+json response for ``request``."""
        return problem_response(
            request,
            status=self.status,
            title=self.title,
            type_=self.type,
            detail=self.detail,
            errors=self.errors,
            headers=self.headers,
        )


def problem_type(slug: str | None) -> str:
    """The type URI for a slug (``about:blank`` for ``None``)."""
    return f"{PROBLEM_TYPE_BASE}{slug}" if slug else "about:blank"


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _request_id(request: Request) -> str | None:
    # Set by the request-context middleware; absent in apps built without it (tests).
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    type_: str = "about:blank",
    detail: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem+json response for ``request`` (fills ``instance`` and ``request_id``)."""
    body = ProblemDetail(
        type=type_,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=list(errors) if errors is not None else None,
        request_id=_request_id(request),
    )
    return ProblemResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=dict(headers) if headers else None,
    )


async def _handle_problem(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Problem):  # pragma: no cover - Starlette routes by type
        raise exc
    if exc.refusal is not None or exc.status in _REFUSED:
        log_refusal(request, status=exc.status, slug=exc.slug, reason=exc.refusal or _reason(exc))
    return exc.to_response(request)


# Refused authentication (401) and authorisation (403): always security events.
_REFUSED = frozenset({401, 403})


def _reason(problem: Problem) -> str:
    return problem.slug or problem.title


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - routed by type
        raise exc
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # Starlette lists the methods of one route; the path may be served by several.
        allow = allowed_methods(request.app.router.routes, request.scope)
        if allow is not None:
            headers = {**(headers or {}), "Allow": ", ".join(allow)}
    if exc.status_code in _REFUSED:
        # Not raised by kanalhub's auth (it raises Problem), but a refusal all the same.
        log_refusal(
            request, status=exc.status_code, slug=None, reason=_status_phrase(exc.status_code)
        )
    if exc.status_code in {204, 304}:
        # These statuses must not have a body.
        return Response(status_code=exc.status_code, headers=headers)
    title = _status_phrase(exc.status_code)
    # Starlette fills ``detail`` with the status phrase when none is given; only a different,
    # textual detail adds anything.
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    return problem_response(
        request, status=exc.status_code, title=title, detail=detail, headers=headers
    )


def _field_path(loc: Sequence[int | str]) -> str:
    """``("body", "items", 3, "service")`` -> ``"body.items[3].service"``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += f".{part}"
        else:
            path = str(part)
    return path or "request"


def _field_problem(error: Mapping[str, Any]) -> FieldProblem:
    """One pydantic error as a FieldProblem; the offending input is left out on purpose."""
    loc: Sequence[int | str] = tuple(error.get("loc", ()))
    kind = error.get("type")
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    message = str(error.get("msg", "Invalid value"))
    if kind == "json_invalid":
        # FastAPI reports the character offset as if it were a list index: say it in words.
        position = next((part for part in loc[1:] if isinstance(part, int)), None)
        reason = ctx.get("error")
        message = "The body is not valid JSON" + (f": {reason}" if reason else "")
        if position is not None:
            message += f" (at character {position})"
        return FieldProblem(field=str(loc[0]) if loc else "body", message=message)
    if kind == "union_tag_invalid":
        # pydantic's own message repeats the tag the client sent; name only what is accepted.
        message = f"Unknown kind; expected one of: {ctx.get('expected_tags', '?')}"
    if kind == "personal_data" and ctx.get("field"):
        # A contract model nested in a body (an address, an opening) refuses at the model and
        # names its field in ctx: name the field itself, as the edge models' guard does.
        loc = (*loc, str(ctx["field"]))
    return FieldProblem(field=_field_path(loc), message=message)


def validation_problem(errors: Sequence[FieldProblem], detail: str | None = None) -> Problem:
    """The 422 ``validation-failed`` problem naming every invalid field, the same whether
    FastAPI or a service's own rules found them. ``detail`` defaults to "N fields are not
    valid."."""
    count = len(errors)
    return Problem(
        422,
        "validation-failed",
        "Request validation failed",
        detail=detail or f"{count} field{' is' if count == 1 else 's are'} not valid.",
        errors=errors,
    )


def coordinate_problems(
    latitude: float, longitude: float, prefix: str = "body"
) -> list[FieldProblem]:
    """Coordinates outside the box around Copenhagen (the contract's reference geography), one
    problem per field, named under ``prefix``."""
    return [
        FieldProblem(field=f"{prefix}.{name}", message=OUTSIDE_MUNICIPALITY)
        for name in outside_municipality(latitude, longitude)
    ]


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - routed by type
        raise exc
    errors = [_field_problem(error) for error in exc.errors()]
    return validation_problem(errors).to_response(request)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    # The client learns nothing about the failure; the log has everything, findable by the
    # request id the client is shown.
    logger.exception(
        "unhandled %s on %s %s (request id %s)",
        type(exc).__name__,
        request.method,
        request.url.path,
        request_id,
    )
    return problem_response(
        request,
        status=500,
        title="Internal Server Error",
        detail="The server could not complete the request. It has been logged; "
        "quote the request id when asking for help.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem+json, and document that in its OpenAPI.

    Handles :class:`Problem`, Starlette/FastAPI ``HTTPException`` (status and headers kept, e.g.
    405 ``Allow``), ``RequestValidationError`` (422 with one entry per field) and any other
    exception (500, logged, nothing about it in the body).
    """
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(Exception, _handle_unexpected)
    _document_problems(app)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: documents a problem+json body for each status.

    ``@router.post("/x", responses=problem_responses(404, 409))``. The schema is registered by
    :func:`install_problem_handlers`.
    """
    return {
        status: {
            "description": _status_phrase(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"{_SCHEMA_REF}ProblemDetail"}}},
        }
        for status in statuses
    }


def _document_problems(app: FastAPI) -> None:
    """Register the problem schema in the OpenAPI document and describe 422 as a problem;
    every operation documents 400 (an unknown query parameter, a body that is not JSON) and
    every operation with a body 413 (over the size limit) and 415 (a ``Content-Type`` it does
    not take).

    FastAPI only registers schemas it finds in ``model`` entries, and those it files under
    ``application/json``; errors here are ``application/problem+json``. FastAPI also documents
    its own 422 body (``HTTPValidationError``), which these handlers never send.
    """
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = ProblemDetail.model_json_schema(
            ref_template=_SCHEMA_REF + "{model}", mode="serialization"
        )
        schemas.update(problem_schema.pop("$defs", {}))
        schemas["ProblemDetail"] = problem_schema
        validation_ref = f"{_SCHEMA_REF}HTTPValidationError"
        for operation in _operations(document):
            # Every operation refuses an unknown or repeated single-valued query parameter
            # with 400 (plumbing.query_guard); the same status also covers a body that is not
            # JSON at all and a malformed Idempotency-Key header (plumbing.idempotency).
            operation["responses"].setdefault("400", problem_responses(400)[400])
            if "requestBody" in operation:
                operation["responses"].setdefault("413", problem_responses(413)[413])
                # A body of a media type the operation does not declare (content_types).
                operation["responses"].setdefault("415", problem_responses(415)[415])
            response = operation.get("responses", {}).get("422")
            if response is None:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") == validation_ref:
                response["description"] = "Request validation failed"
                response["content"] = problem_responses(422)[422]["content"]
        # Drop FastAPI's validation schemas once nothing refers to them any more.
        for name in ("HTTPValidationError", "ValidationError"):
            schemas_left = {k: v for k, v in schemas.items() if k != name}
            if f'"{_SCHEMA_REF}{name}"' not in json.dumps([document.get("paths"), schemas_left]):
                schemas.pop(name, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                yield operation
