"""The pydantic models at the kvik service's HTTP edge: what kiosks, admins and staff send and get.

No free-text field exists anywhere: ids, codes, enums and times only, so no personal data can
come in. The contract's own ``Id``/``Code`` types are reused so a value accepted here is one the
event payloads accept too.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from services.contracts.payloads.base import Code, Id
from services.contracts.reference import Channel, District, HelpChannel, SessionOutcome
from services.plumbing.edge_models import EdgeModel

MAX_STEPS = 200
"""More screens than any real session passes; bounds what one session can make us store."""

Steps = Annotated[list[Code], Field(max_length=MAX_STEPS)]
SoftwareVersion = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}$")]


class Edge(EdgeModel):
    """Closed: an unknown field is a client bug, refused with 422 rather than ignored. Every
    string is checked by the CPR guard as the body is parsed (see ``EdgeModel``): a streamed
    step or a heartbeat is stored before any event is built, so the event's own guard would come
    too late."""


class SessionIn(Edge):
    """A finished self-service session, posted in one call (or as one item of a batch)."""

    session_id: UUID
    """Chosen by the kiosk; posting the same session again is safe."""
    kiosk_id: Id
    """Must be the kiosk the device token belongs to."""
    service: Code
    """A service code of the catalogue."""
    started_at: AwareDatetime
    ended_at: AwareDatetime
    steps: Steps = Field(default_factory=list)
    outcome: SessionOutcome
    help: HelpChannel = HelpChannel.NONE
    referred_to: Channel | None = None
    """Only for outcome ``referred``: the channel the citizen was sent to (not ``kvik``)."""


class SessionStartIn(Edge):
    """The start of a streamed session."""

    kiosk_id: Id
    service: Code
    started_at: AwareDatetime


class StepIn(Edge):
    """One screen passed, numbered by the kiosk so late or repeated steps fall into place."""

    seq: Annotated[int, Field(ge=0, lt=MAX_STEPS)]
    code: Code
    at: AwareDatetime


class SessionStepsIn(Edge):
    """Steps of a streamed session, as they happen."""

    kiosk_id: Id
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=MAX_STEPS)]


class SessionEndIn(Edge):
    """The end of a streamed session.

    ``service`` and ``started_at`` may be repeated here, so an end that overtakes its start
    still records the whole session. ``steps``, when given, is the full list and replaces the
    streamed ones.
    """

    kiosk_id: Id
    ended_at: AwareDatetime
    outcome: SessionOutcome
    help: HelpChannel = HelpChannel.NONE
    referred_to: Channel | None = None
    service: Code | None = None
    started_at: AwareDatetime | None = None
    steps: Steps | None = None


class SessionResult(BaseModel):
    """What a recorded session answers; a retry gets exactly this again."""

    session_id: str
    outcome: SessionOutcome
    event_id: str
    district: District
    entry_id: str


class SessionOpened(BaseModel):
    """The state of a streamed session that has not ended."""

    session_id: str
    state: Literal["open", "ended"]
    steps: int = 0


class ItemResult(BaseModel):
    """One item of a batch upload: its own status and either its result or its problem."""

    index: int
    session_id: str | None
    status: int
    result: SessionResult | None = None
    problem: dict[str, object] | None = None


class BatchResult(BaseModel):
    """The 207 answer to a batch upload: one entry per item, in the order sent."""

    created: int
    replayed: int
    failed: int
    items: list[ItemResult]


class KioskIn(Edge):
    """Register a kiosk at a KVIK point."""

    kiosk_id: Id | None = None
    """A slug such as ``kiosk-sundby-01``; a new one is made when left out."""
    entry_id: Id


class KioskOut(BaseModel):
    """A kiosk as the administrators see it; never its token or the token's hash."""

    kiosk_id: str
    entry_id: str
    district: District
    status: Literal["active", "revoked"]
    registered_at: str
    online: bool | None = None
    """None until the first heartbeat."""
    software_version: str | None = None
    state: str | None = None
    last_seen: str | None = None
    token_issued_at: str | None = None
    """When the current device token was issued (registration, rotation or reinstatement);
    the token itself is shown only once, in the answer that issued it."""


class KioskAuditRecord(BaseModel):
    """One administrator's change to a kiosk's token."""

    action: Literal["rotate", "revoke", "reinstate"]
    actor: str
    """Who did it: the administrator's subject as the service stores people."""
    at: str


class KioskCredentials(BaseModel):
    """The device token, shown once, at registration or rotation."""

    kiosk_id: str
    entry_id: str
    district: District
    token: str


class KioskState(Edge):
    """The states a kiosk reports in its heartbeat."""

    software_version: SoftwareVersion
    state: Literal["ready", "in_session", "degraded", "maintenance"]


class HeartbeatOut(BaseModel):
    """What a heartbeat answers."""

    kiosk_id: str
    online: bool
    came_online: bool
    """True when this heartbeat brought the kiosk (back) online."""
    next_within_seconds: float


class HelpIn(Edge):
    """A citizen at a kiosk asks for staff help."""

    help_request_id: UUID
    """Chosen by the kiosk; sending the same request again is safe."""
    kiosk_id: Id
    session_id: UUID
    channel: Literal[HelpChannel.VIDEO, HelpChannel.PHONE]


class HelpOut(BaseModel):
    """A help request as the queue shows it."""

    help_request_id: str
    kiosk_id: str
    entry_id: str
    session_id: str
    channel: HelpChannel
    queue: str
    state: Literal["waiting", "answered"]
    requested_at: str
    escalated: bool
    answered_at: str | None = None
    staff: str | None = None
    wait_seconds: float | None = None
