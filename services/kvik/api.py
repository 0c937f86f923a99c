"""The kvik service's HTTP routes, HTTP only: parse, authorise, call a use case, answer.

Kiosks authenticate with their device token (``Authorization: Bearer kvk_...``), which also
takes one token from the kiosk's rate-limit bucket. Only kiosk administrators (``kvik:admin``)
register kiosks and issue, revoke or reinstate their tokens - a registry editor cannot, since a
token is a kiosk's identity (docs/security.md has the role x route table); staff
(``kvik:staff`` or ``kvik:admin``) work the help queues.
"""

from __future__ import annotations

import asyncio
import email.message
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, TypeAdapter, ValidationError
from sse_starlette import EventSourceResponse

from services.kvik.kiosks import Kiosk
from services.kvik.schemas import (
    BatchResult,
    HeartbeatOut,
    HelpIn,
    HelpOut,
    KioskAuditRecord,
    KioskCredentials,
    KioskIn,
    KioskOut,
    KioskState,
    SessionEndIn,
    SessionIn,
    SessionOpened,
    SessionResult,
    SessionStartIn,
    SessionStepsIn,
)
from services.kvik.service import KvikService
from services.kvik.token_failures import client_address, token_failures_limited
from services.plumbing.auth import DEVICE_TOKEN_PREFIX, CurrentPrincipal, Principal, Role
from services.plumbing.exact_values import QueryInt
from services.plumbing.problems import FieldProblem, Problem, problem_responses, validation_problem
from services.plumbing.security_log import remember_actor

router = APIRouter()

KIOSK_PROBLEMS = problem_responses(401, 403, 409, 413, 422, 429)
ADMIN_PROBLEMS = problem_responses(401, 403, 404, 409, 422)

_device_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="device",
    description="A kiosk's device token (kvk_...), shown once when the kiosk is registered.",
)


async def _service(request: Request) -> KvikService:
    # async on purpose: FastAPI runs a plain-def dependency in a worker thread, and that hop
    # cost more than the rest of a session post.
    service: KvikService = request.app.state.kvik
    return service


ServiceDep = Annotated[KvikService, Depends(_service)]


async def device_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_device_scheme)],
) -> str:
    """FastAPI dependency: the device token of the request (401 without one)."""
    if credentials is None:
        raise Problem(
            401,
            "token-missing",
            "Authentication required",
            detail="Send Authorization: Bearer <device token>.",
            headers={"WWW-Authenticate": "Bearer"},
            refusal="no token",
        )
    if not credentials.credentials.startswith(DEVICE_TOKEN_PREFIX):
        # A person's JWT or garbage: refused before the body is looked at, without Redis (a
        # well-formed device token is checked against Redis where the session is recorded).
        raise Problem(
            401,
            "token-invalid",
            "Not a device token",
            detail="Kiosk endpoints take the kiosk's device token (kvk_...), not a person's.",
            headers={"WWW-Authenticate": "Bearer"},
            refusal="not a device token",
        )
    return credentials.credentials


DeviceToken = Annotated[str, Depends(device_token)]


async def current_kiosk(request: Request, service: ServiceDep, token: DeviceToken) -> Kiosk:
    """FastAPI dependency: the kiosk behind the device token (401), within its rate (429);
    429 also once the client address sent too many unknown tokens (``token_failures``)."""
    async with token_failures_limited(service.store, service.settings, client_address(request)):
        kiosk = await service.kiosks.authenticate(token)
    # A refusal after this point (posting for another kiosk) is logged with who asked.
    remember_actor(request, f"kiosk:{kiosk.kiosk_id}")
    return kiosk


CurrentKiosk = Annotated[Kiosk, Depends(current_kiosk)]


def _any_role(*roles: Role) -> Any:
    names = " or ".join(role.value for role in roles)

    async def principal_with_any_role(principal: CurrentPrincipal) -> Principal:
        if not any(principal.has_role(role) for role in roles):
            raise Problem(
                403,
                "role-missing",
                "Role missing",
                detail=f"This needs the role {names}, which the token does not carry.",
                refusal=f"role missing: {names}",
            )
        return principal

    return principal_with_any_role


# kvik:admin alone: whoever can issue a kiosk's token can act as that kiosk.
Admin = Annotated[Principal, Depends(_any_role(Role.KVIK_ADMIN))]
Staff = Annotated[Principal, Depends(_any_role(Role.KVIK_STAFF, Role.KVIK_ADMIN))]


def _json(model: BaseModel, status: int) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


# --- kiosks --------------------------------------------------------------------------------


@router.post(
    "/kiosks",
    tags=["kiosks"],
    status_code=201,
    response_model=KioskCredentials,
    responses=ADMIN_PROBLEMS,
)
async def register_kiosk(body: KioskIn, service: ServiceDep, admin: Admin) -> KioskCredentials:
    """Register a kiosk at an open KVIK point. The device token is in this answer only."""
    return await service.kiosks.register(body.entry_id, body.kiosk_id)


@router.get(
    "/kiosks/{kiosk_id}", tags=["kiosks"], response_model=KioskOut, responses=ADMIN_PROBLEMS
)
async def get_kiosk(kiosk_id: str, service: ServiceDep, admin: Admin) -> KioskOut:
    """A kiosk: where it stands, whether it is online, its last heartbeat."""
    return await service.kiosks.kiosk(kiosk_id)


@router.post(
    "/kiosks/{kiosk_id}/token",
    tags=["kiosks"],
    response_model=KioskCredentials,
    responses=ADMIN_PROBLEMS,
)
async def rotate_token(kiosk_id: str, service: ServiceDep, admin: Admin) -> KioskCredentials:
    """Issue a new device token for an active kiosk; the old one is refused from now on. A
    revoked kiosk is a 409: it comes back only through ``POST /kiosks/{id}/reinstate``."""
    return await service.kiosks.rotate(kiosk_id, admin.actor)


@router.delete(
    "/kiosks/{kiosk_id}/token", tags=["kiosks"], response_model=KioskOut, responses=ADMIN_PROBLEMS
)
async def revoke_token(kiosk_id: str, service: ServiceDep, admin: Admin) -> KioskOut:
    """Revoke the kiosk's token: its next request is refused (recorded in its audit list)."""
    return await service.kiosks.revoke(kiosk_id, admin.actor)


@router.post(
    "/kiosks/{kiosk_id}/reinstate",
    tags=["kiosks"],
    response_model=KioskCredentials,
    responses=ADMIN_PROBLEMS,
)
async def reinstate_kiosk(kiosk_id: str, service: ServiceDep, admin: Admin) -> KioskCredentials:
    """Bring a revoked kiosk back with a new device token (in this answer only); recorded with
    the administrator and the time in the kiosk's audit list. A kiosk not revoked is a 409."""
    return await service.kiosks.reinstate(kiosk_id, admin.actor)


@router.get(
    "/kiosks/{kiosk_id}/audit",
    tags=["kiosks"],
    response_model=list[KioskAuditRecord],
    responses=ADMIN_PROBLEMS,
)
async def kiosk_audit(kiosk_id: str, service: ServiceDep, admin: Admin) -> list[KioskAuditRecord]:
    """Who rotated, revoked or reinstated the kiosk's token, and when; oldest first."""
    return await service.kiosks.audit(kiosk_id)


@router.post(
    "/kiosks/{kiosk_id}/heartbeat",
    tags=["kiosks"],
    response_model=HeartbeatOut,
    responses=KIOSK_PROBLEMS,
)
async def heartbeat(
    kiosk_id: str, body: KioskState, service: ServiceDep, kiosk: CurrentKiosk
) -> HeartbeatOut:
    """A kiosk reports it is alive, with its software version and state."""
    return await service.kiosks.heartbeat(kiosk, kiosk_id, body)


# --- sessions ------------------------------------------------------------------------------


_SESSION_IN: TypeAdapter[SessionIn] = TypeAdapter(SessionIn)


def _json_media(content_type: str) -> bool:
    """Whether FastAPI reads a body of this content type as JSON (``application/json`` or
    ``application/*+json``, parameters ignored)."""
    if content_type == "application/json":
        return True  # what kiosks send; the general rule below gives the same
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def _session_body(request: Request) -> SessionIn:
    """The body of ``POST /sessions`` validated as :class:`SessionIn`, in one pass over the
    bytes (pydantic's JSON parser, no intermediate dict).

    Anything that does not validate that way is read again exactly as FastAPI reads a body
    parameter (``json.loads``, then the model), so refusals - and their messages - are FastAPI's.
    """
    raw = await request.body()
    content_type = request.headers.get("content-type")
    if raw and content_type and _json_media(content_type):
        try:
            return _SESSION_IN.validate_json(raw)
        except ValidationError:
            pass  # the reading below gives the answer FastAPI gives
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    document: Any = raw  # not JSON by its content type: validated as bytes, and refused
    if content_type and _json_media(content_type):
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as error:
            detail = {"type": "json_invalid", "loc": ("body", error.pos)}
            raise RequestValidationError(
                [{**detail, "msg": "JSON decode error", "input": {}, "ctx": {"error": error.msg}}]
            ) from None
        except (ValueError, RecursionError):
            # Not UTF-8, UTF-16 or UTF-32 at all, or nested deeper than json.loads recurses:
            # FastAPI answers both with this 400.
            raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return _SESSION_IN.validate_python(document, from_attributes=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None


_SESSION_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionIn"}}},
        "required": True,
    },
    "security": [{"device": []}],
}
"""What FastAPI wrote for the route when it parsed the body and the token itself; ``app.py``
registers the ``SessionIn`` schema the reference points to."""


@router.post(
    "/sessions",
    tags=["sessions"],
    status_code=201,
    response_model=SessionResult,
    responses={200: {"model": SessionResult, "description": "Recorded before"}, **KIOSK_PROBLEMS},
    openapi_extra=_SESSION_OPENAPI,
)
async def post_session(request: Request) -> Response:
    """Record a finished session. Sending it again returns the stored result (200); a different
    session under the same id is a 409."""
    # The hottest route reads its token and body itself: FastAPI's dependency solving and body
    # parsing cost more than the rest of the post. The token is refused (401) from the header
    # alone, before the body is read; it is checked in Redis inside the recording script
    # (one round trip), not by CurrentKiosk.
    token = await device_token(await _device_scheme(request))
    body = await _session_body(request)
    service: KvikService = request.app.state.kvik
    async with token_failures_limited(service.store, service.settings, client_address(request)):
        status, result = await service.sessions.record_with_token(token, body)
    # The stored result is already the SessionResult's JSON: sent as it is, not re-encoded.
    return Response(result, status_code=status, media_type="application/json")


@router.post(
    "/sessions/batch",
    tags=["sessions"],
    status_code=207,
    response_model=BatchResult,
    responses=KIOSK_PROBLEMS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["sessions"],
                        "properties": {
                            "sessions": {
                                "type": "array",
                                "maxItems": 1000,
                                "items": {"$ref": "#/components/schemas/SessionIn"},
                            }
                        },
                    }
                }
            },
        }
    },
)
async def post_batch(request: Request, service: ServiceDep, kiosk: CurrentKiosk) -> Response:
    """Upload a backlog of sessions (``{"sessions": [...]}``, at most 1,000). Each item is
    recorded or refused on its own; the 207 answer has one result per item, in order."""
    try:
        document = json.loads(await request.body())
    except (ValueError, RecursionError):  # nested deeper than json.loads recurses, too
        raise validation_problem(
            [FieldProblem(field="body", message="The body is not valid JSON")]
        ) from None
    if not isinstance(document, dict) or "sessions" not in document:
        raise validation_problem([FieldProblem(field="body.sessions", message="Field required")])
    result = await service.sessions.record_batch(kiosk, document["sessions"])
    return _json(result, 207)


@router.post(
    "/sessions/{session_id}/start",
    tags=["sessions"],
    response_model=SessionOpened,
    responses=KIOSK_PROBLEMS,
)
async def start_session(
    session_id: UUID, body: SessionStartIn, service: ServiceDep, kiosk: CurrentKiosk
) -> Response:
    """Stream a session: it started (201; 200 for the same start again)."""
    status, opened = await service.streaming.start(kiosk, session_id, body)
    return _json(opened, status)


@router.post(
    "/sessions/{session_id}/steps",
    tags=["sessions"],
    response_model=SessionOpened,
    responses=KIOSK_PROBLEMS,
)
async def session_steps(
    session_id: UUID, body: SessionStepsIn, service: ServiceDep, kiosk: CurrentKiosk
) -> Response:
    """Stream a session: screens passed, numbered by ``seq`` (any order, repeats are no-ops)."""
    status, opened = await service.streaming.steps(kiosk, session_id, body)
    return _json(opened, status)


@router.post(
    "/sessions/{session_id}/end",
    tags=["sessions"],
    response_model=SessionResult,
    responses=KIOSK_PROBLEMS,
)
async def end_session(
    session_id: UUID, body: SessionEndIn, service: ServiceDep, kiosk: CurrentKiosk
) -> Response:
    """Stream a session: it ended. Publishes the session's event (201; 200 for a retry)."""
    status, result = await service.streaming.end(kiosk, session_id, body)
    return _json(result, status)


# --- staff help ----------------------------------------------------------------------------


@router.post(
    "/help", tags=["help"], status_code=201, response_model=HelpOut, responses=KIOSK_PROBLEMS
)
async def request_help(body: HelpIn, service: ServiceDep, kiosk: CurrentKiosk) -> Response:
    """A citizen asks for staff help by video or phone; queued with the entry's team."""
    status, request = await service.help.request(kiosk, body)
    return _json(request, status)


@router.get(
    "/help/queues/{queue}",
    tags=["help"],
    response_model=list[HelpOut],
    responses=ADMIN_PROBLEMS,
)
async def help_queue(queue: str, service: ServiceDep, staff: Staff) -> list[HelpOut]:
    """The waiting requests of a queue (``team-<district>`` or ``contact-centre``)."""
    return await service.help.queue(queue)


@router.get(
    "/help/queues/{queue}/stream",
    tags=["help"],
    response_model=None,  # Server-Sent Events, not one JSON document
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        **ADMIN_PROBLEMS,
    },
)
async def help_queue_stream(
    queue: str,
    request: Request,
    service: ServiceDep,
    staff: Staff,
    limit: Annotated[
        QueryInt | None, Query(ge=1, description="Close after this many updates (for tools).")
    ] = None,
) -> EventSourceResponse:
    """The live queue as Server-Sent Events: a ``queue`` event with the whole waiting list
    whenever it changes (and once at the start)."""
    await service.help.queue(queue)  # 404 now, before the stream starts
    poll = service.settings.help_stream_poll_seconds

    async def updates() -> AsyncIterator[dict[str, str]]:
        last: str | None = None
        sent = 0
        while limit is None or sent < limit:
            snapshot = json.dumps(
                [item.model_dump(mode="json") for item in await service.help.queue(queue)]
            )
            if snapshot != last:
                last = snapshot
                sent += 1
                yield {"event": "queue", "data": snapshot}
                continue
            if await request.is_disconnected():
                return
            await asyncio.sleep(poll)

    return EventSourceResponse(updates(), ping=int(service.settings.help_stream_ping_seconds))


@router.get("/help/{help_id}", tags=["help"], response_model=HelpOut, responses=ADMIN_PROBLEMS)
async def get_help(help_id: UUID, service: ServiceDep, staff: Staff) -> HelpOut:
    """One help request, with its wait once answered."""
    return await service.help.get(str(help_id))


@router.post(
    "/help/{help_id}/take", tags=["help"], response_model=HelpOut, responses=ADMIN_PROBLEMS
)
async def take_help(help_id: UUID, service: ServiceDep, staff: Staff) -> HelpOut:
    """Staff take a waiting request; the answer says how long the citizen waited."""
    return await service.help.take(str(help_id), staff)
