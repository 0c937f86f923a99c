"""The mobile service's HTTP routes: parse, authorise, call a use case (``service.py``,
``series.py``, ``attendance.py``, ``suggestions.py``), answer its result with a response
model and map its refusals to problem+json (:func:`install_refusal_handlers`). Reads (visits,
calendars, feeds, utilisation, suggestions) are open, like the registry's, so a calendar app
can subscribe to a feed; every change needs ``mobile:plan``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response

from services.contracts import District
from services.mobile import attendance, service
from services.mobile import series as series_cases
from services.mobile.calendar import ics_feed
from services.mobile.calendar_links import CalendarLink, calendar_link, link_signing_key
from services.mobile.domain import (
    Invalid,
    NotFound,
    OutsideOpeningHours,
    Refusal,
    StateConflict,
    Visit,
    VisitStatus,
    local_iso,
)
from services.mobile.schemas import (
    BookingIn,
    BookingOut,
    CalendarOut,
    CancelIn,
    CompleteIn,
    ContactIn,
    ContactOut,
    OccurrenceEdit,
    PlaceUtilisationOut,
    PublicSeriesOut,
    PublicVisitOut,
    SeriesIn,
    SeriesOut,
    SuggestionsOut,
    VisitEdit,
    VisitIn,
    VisitOut,
    VisitUtilisationOut,
    contact_view,
    public_series_view,
    public_visit_view,
    series_view,
    suggestion_view,
    visit_view,
)
from services.mobile.series import Scope
from services.mobile.store import Contended, MobileStore, VisitConflict
from services.mobile.suggestions import suggest_next
from services.plumbing.auth import MobilePlanner
from services.plumbing.exact_values import QueryDate, QueryInt
from services.plumbing.idempotency import IdempotencyKey
from services.plumbing.problems import (
    FieldProblem,
    Problem,
    problem_responses,
    validation_problem,
)

router = APIRouter()

WRITE_PROBLEMS = problem_responses(401, 403, 404, 409, 413, 422, 503)
STAFF_PATTERN = r"^staff-[a-z0-9]{6,32}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"


def _store(request: Request) -> MobileStore:
    store: MobileStore = request.app.state.mobile_store
    return store


StoreDep = Annotated[MobileStore, Depends(_store)]


# --- refusals as problems ------------------------------------------------------------------


def problem_of(error: Exception) -> Problem:
    """The problem+json answer to a use case's refusal (or a store's conflict or contention)."""
    match error:
        case NotFound():
            return Problem(404, None, "Not Found", detail=f"No {error.what}.")
        case Invalid():
            return validation_problem(error.problems)
        case StateConflict():
            return Problem(409, error.code, error.title, detail=error.detail)
        case OutsideOpeningHours():
            return Problem(
                422,
                "outside-opening-hours",
                "Outside opening hours",
                detail=f"{error.place_name} is not open for the whole visit ({error.days}). "
                "Send override_opening_hours: true to plan it anyway; the override is recorded.",
            )
        case VisitConflict():
            conflict = error.conflict
            return Problem(
                409,
                "visit-conflict",
                "Visit conflict",
                detail=conflict.describe(),
                errors=[
                    FieldProblem(field="conflict.visit_id", message=conflict.visit_id),
                    FieldProblem(field="conflict.kind", message=conflict.kind.value),
                    FieldProblem(field="conflict.resource", message=conflict.resource),
                    FieldProblem(
                        field="conflict.planned_visit_id", message=conflict.planned_visit_id
                    ),
                ],
            )
        case Contended():
            return Problem(
                503,
                "contended",
                "Too many concurrent changes",
                detail="Others kept changing the same staff or kit; nothing was saved. Try again.",
                headers={"Retry-After": "1"},
            )
    raise TypeError(f"not a refusal: {type(error).__name__}")  # pragma: no cover


async def _answer_refusal(request: Request, error: Exception) -> Response:
    return problem_of(error).to_response(request)


def install_refusal_handlers(app: FastAPI) -> None:
    """Answer the use cases' refusals with their problems (see :func:`problem_of`)."""
    for kind in (Refusal, VisitConflict, Contended):
        app.add_exception_handler(kind, _answer_refusal)


def _created(response: Response, created: bool, location: str) -> None:
    """201 with the new resource's address; a replayed create is a 200 without one."""
    if created:
        response.headers["Location"] = location
    else:
        response.status_code = 200


# --- visits --------------------------------------------------------------------------------


@router.post(
    "/visits",
    tags=["visits"],
    status_code=201,
    responses=WRITE_PROBLEMS,
    response_model=VisitOut,
    response_model_exclude_unset=True,
)
async def plan_visit(
    body: VisitIn,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> dict[str, Any]:
    """Plan a visit at a registry site or an ad-hoc place. 409 names the visit it collides
    with (the same staff or kit at the same time, or too little travel time between places).
    The same ``visit_id`` (or ``Idempotency-Key``) with the same plan answers the stored visit."""
    saved = await service.plan_visit(store, body, planner, idempotency_key)
    _created(response, saved.created, f"/visits/{saved.value.visit_id}")
    return visit_view(saved.value)


@router.post(
    "/visits/held",
    tags=["visits"],
    status_code=201,
    responses=WRITE_PROBLEMS,
    summary="Log a visit that already took place",
    response_model=VisitOut,
    response_model_exclude_unset=True,
)
async def log_held_visit(
    body: VisitIn,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> dict[str, Any]:
    """A visit the team held without planning it here first (an "as needed" stop, or a day
    on paper), logged afterwards with the times it actually ran: it is stored as completed
    (publishing ``visit.planned`` and ``visit.completed``), and its contacts are then recorded
    with ``POST /visits/{id}/contacts`` and their own ``at``. The same checks as planning apply
    (staff and kit cannot be in two places at once, opening hours), except that the window must
    be over, and at most 400 days ago. The same ``visit_id`` (or ``Idempotency-Key``) with the
    same visit answers the stored one (200)."""
    saved = await service.log_held_visit(store, body, planner, idempotency_key)
    _created(response, saved.created, f"/visits/{saved.value.visit_id}")
    return visit_view(saved.value)


@router.get(
    "/visits/{visit_id}",
    tags=["visits"],
    responses=problem_responses(404),
    response_model=PublicVisitOut,
    response_model_exclude_unset=True,
)
async def get_visit(visit_id: str, store: StoreDep) -> dict[str, Any]:
    """One visit, with its booking count (public: no staff or actor ids)."""
    visit = await service.visit_or_not_found(store, visit_id)
    return public_visit_view(visit, len(await store.bookings(visit_id)))


@router.patch(
    "/visits/{visit_id}",
    tags=["visits"],
    responses=WRITE_PROBLEMS,
    response_model=VisitOut,
    response_model_exclude_unset=True,
)
async def edit_visit(
    visit_id: str, body: VisitEdit, store: StoreDep, planner: MobilePlanner
) -> dict[str, Any]:
    """Change a planned or confirmed visit (for a series occurrence: "this one" only); the
    same conflict and opening-hour checks as planning apply."""
    return visit_view(await service.edit_visit(store, visit_id, body, planner))


@router.post(
    "/visits/{visit_id}/confirm",
    tags=["visits"],
    responses=WRITE_PROBLEMS,
    response_model=VisitOut,
    response_model_exclude_unset=True,
)
async def confirm_visit(
    visit_id: str, store: StoreDep, planner: MobilePlanner, idempotency_key: IdempotencyKey
) -> dict[str, Any]:
    """planned -> confirmed; any other state is a 409 (a retry with the same
    ``Idempotency-Key`` answers the visit instead)."""
    return visit_view(
        await service.take_step(store, visit_id, VisitStatus.CONFIRMED, planner, idempotency_key)
    )


@router.post(
    "/visits/{visit_id}/start",
    tags=["visits"],
    responses=WRITE_PROBLEMS,
    response_model=VisitOut,
    response_model_exclude_unset=True,
)
async def start_visit(
    visit_id: str, store: StoreDep, planner: MobilePlanner, idempotency_key: IdempotencyKey
) -> dict[str, Any]:
    """confirmed -> in_progress (the actual start is now); any other state is a 409."""
    return visit_view(
        await service.take_step(store, visit_id, VisitStatus.IN_PROGRESS, planner, idempotency_key)
    )


@router.post(
    "/visits/{visit_id}/complete",
    tags=["visits"],
    responses=WRITE_PROBLEMS,
    response_model=VisitOut,
    response_model_exclude_unset=True,
)
async def complete_visit(
    visit_id: str,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
    body: CompleteIn | None = None,
) -> dict[str, Any]:
    """in_progress -> completed; publishes VisitCompleted with the actual times (default:
    when it was started, and now)."""
    visit = await service.take_step(
        store, visit_id, VisitStatus.COMPLETED, planner, idempotency_key, actual=body
    )
    return visit_view(visit)


@router.post(
    "/visits/{visit_id}/cancel",
    tags=["visits"],
    responses=WRITE_PROBLEMS,
    response_model=VisitOut,
    response_model_exclude_unset=True,
)
async def cancel_visit(
    visit_id: str,
    body: CancelIn,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
) -> dict[str, Any]:
    """Cancel a planned or confirmed visit with a reason code; frees its staff and kit and
    publishes VisitCancelled, which is how the booked citizens get notified."""
    visit = await service.take_step(
        store, visit_id, VisitStatus.CANCELLED, planner, idempotency_key, reason=body.reason
    )
    return visit_view(visit, len(await store.bookings(visit_id)))


# --- bookings ------------------------------------------------------------------------------


@router.post(
    "/visits/{visit_id}/bookings",
    tags=["bookings"],
    responses=WRITE_PROBLEMS,
    response_model=BookingOut,
    response_model_exclude_unset=True,
)
async def book(
    visit_id: str, body: BookingIn, store: StoreDep, planner: MobilePlanner, response: Response
) -> attendance.Booking:
    """Book a citizen into a slot (the first free one, or ``slot``); only the booking reference
    is kept. The same reference again answers its slot (200); a full visit or a taken slot is a
    409; concurrent bookings never share a slot."""
    saved = await attendance.book(store, visit_id, body)
    response.status_code = 201 if saved.created else 200
    return saved.value


@router.get(
    "/visits/{visit_id}/bookings",
    tags=["bookings"],
    responses=problem_responses(404),
    response_model=list[BookingOut],
    response_model_exclude_unset=True,
)
async def list_bookings(visit_id: str, store: StoreDep) -> list[attendance.Booking]:
    """A visit's bookings by slot."""
    return await attendance.bookings(store, visit_id)


@router.delete(
    "/visits/{visit_id}/bookings/{booking_ref}",
    tags=["bookings"],
    status_code=204,
    responses=WRITE_PROBLEMS,
)
async def cancel_booking(
    visit_id: str, booking_ref: str, store: StoreDep, planner: MobilePlanner
) -> Response:
    """Cancel a booking; its slot is free again."""
    await attendance.cancel_booking(store, visit_id, booking_ref)
    return Response(status_code=204)


# --- contacts ------------------------------------------------------------------------------


@router.post(
    "/visits/{visit_id}/contacts",
    tags=["contacts"],
    responses=WRITE_PROBLEMS,
    response_model=ContactOut,
    response_model_exclude_unset=True,
)
async def record_contact(
    visit_id: str,
    body: ContactIn,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> dict[str, Any]:
    """Record one contact at a visit in progress or completed; publishes ContactRecorded in
    the district of the visit's place. A retry with the same ``contact_id`` (or
    ``Idempotency-Key``) is answered 200 and counted once."""
    saved = await attendance.record_contact(store, visit_id, body, planner, idempotency_key)
    response.status_code = 201 if saved.created else 200
    return contact_view(saved.value, visit_id)


@router.get(
    "/visits/{visit_id}/contacts",
    tags=["contacts"],
    responses=problem_responses(404),
    response_model=list[ContactOut],
    response_model_exclude_unset=True,
)
async def list_contacts(visit_id: str, store: StoreDep) -> list[dict[str, Any]]:
    """A visit's contacts, by time."""
    return [contact_view(c) for c in await attendance.contacts(store, visit_id)]


# --- utilisation ---------------------------------------------------------------------------


@router.get(
    "/visits/{visit_id}/utilisation",
    tags=["utilisation"],
    responses=problem_responses(404),
    response_model=VisitUtilisationOut,
    response_model_exclude_unset=True,
)
async def visit_utilisation(visit_id: str, store: StoreDep) -> dict[str, object]:
    """Contacts per staffed hour, bookings used and drop-ins of one visit."""
    return {"visit_id": visit_id, **await attendance.visit_utilisation(store, visit_id)}


@router.get(
    "/places/{place_id}/utilisation",
    tags=["utilisation"],
    response_model=PlaceUtilisationOut,
    response_model_exclude_unset=True,
)
async def place_utilisation(
    place_id: Annotated[str, Path(pattern=ID_PATTERN)],
    store: StoreDep,
    start: QueryDate | None = None,
    end: QueryDate | None = None,
) -> dict[str, object]:
    """The same figures over every visit to a place (in ``[start, end)`` if given)."""
    return {"place_id": place_id, **await attendance.place_utilisation(store, place_id, start, end)}


# --- recurring series ----------------------------------------------------------------------


@router.post(
    "/series",
    tags=["series"],
    status_code=201,
    responses=WRITE_PROBLEMS,
    response_model=SeriesOut,
    response_model_exclude_unset=True,
)
async def plan_series(
    body: SeriesIn,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> dict[str, Any]:
    """Plan recurring visits from an RFC 5545 RRULE (e.g. ``FREQ=WEEKLY;BYDAY=TU;COUNT=10``)
    at the first start's Copenhagen wall-clock time, across DST changes. Danish public
    holidays are skipped; ``exceptions`` cancel or move single dates. All visits are checked
    and saved together: one collision refuses the whole series (409 naming the visit)."""
    saved = await series_cases.plan_series(store, body, planner, idempotency_key)
    series, visits = saved.value
    _created(response, saved.created, f"/series/{series.series_id}")
    return series_view(series, visits)


@router.get(
    "/series/{series_id}",
    tags=["series"],
    responses=problem_responses(404),
    response_model=PublicSeriesOut,
    response_model_exclude_unset=True,
)
async def get_series(series_id: str, store: StoreDep) -> dict[str, Any]:
    """A series with its rule, skipped dates and visits (public: no staff or actor ids)."""
    return public_series_view(*await series_cases.series_with_visits(store, series_id))


@router.patch(
    "/series/{series_id}/occurrences/{day}",
    tags=["series"],
    responses=WRITE_PROBLEMS,
    response_model=SeriesOut,
    response_model_exclude_unset=True,
)
async def edit_occurrences(
    series_id: str,
    day: QueryDate,
    body: OccurrenceEdit,
    store: StoreDep,
    planner: MobilePlanner,
    scope: Scope = Scope.THIS,
) -> dict[str, Any]:
    """Edit one occurrence (``scope=this``) or it and all following (``scope=following``):
    a new start time (kept as Copenhagen wall-clock time on each visit's own date), duration,
    staff, kit, services, slots. Visits already under way or over are left as they are."""
    return series_view(
        *await series_cases.edit_occurrences(store, series_id, day, body, planner, scope)
    )


@router.post(
    "/series/{series_id}/occurrences/{day}/cancel",
    tags=["series"],
    responses=WRITE_PROBLEMS,
    response_model=SeriesOut,
    response_model_exclude_unset=True,
)
async def cancel_occurrences(
    series_id: str,
    day: QueryDate,
    body: CancelIn,
    store: StoreDep,
    planner: MobilePlanner,
    scope: Scope = Scope.THIS,
) -> dict[str, Any]:
    """Cancel one occurrence or it and all following (those not yet under way); each
    cancelled visit publishes VisitCancelled."""
    return series_view(
        *await series_cases.cancel_occurrences(store, series_id, day, body, planner, scope)
    )


# --- calendars -----------------------------------------------------------------------------


class CalendarKind(StrEnum):
    """Whose calendar: a staff member's, a place's or a district's."""

    STAFF = "staff"
    PLACE = "place"
    DISTRICT = "district"


async def _calendar(
    request: Request,
    store: MobileStore,
    kind: CalendarKind,
    target: str,
    start: dt.date | None,
    end: dt.date | None,
) -> list[Visit]:
    settings = request.app.state.settings
    return await service.calendar(
        store,
        kind.value,
        target,
        start,
        end,
        default_past=settings.calendar_past_days,
        default_future=settings.calendar_future_days,
    )


def _ics(name: str, visits: Sequence[Visit], *, private: bool = False) -> Response:
    return Response(
        ics_feed(name, visits, service.utc_now()),
        media_type="text/calendar; charset=utf-8",
        # A staff feed's address is a secret: no shared cache may keep a copy under it.
        headers={"Cache-Control": "private, max-age=300" if private else "max-age=300"},
    )


def _json_calendar(kind: CalendarKind, target: str, visits: Sequence[Visit]) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "target": target,
        "timezone": "Europe/Copenhagen",
        # Calendars are public: no staff or actor ids, not even on a staff member's own feed.
        "visits": [public_visit_view(v) for v in visits],
    }


StaffPath = Annotated[str, Path(pattern=STAFF_PATTERN, description="A pseudonymous staff id")]
LinkKey = Annotated[
    str | None,
    Query(
        description="The secret key of the staff calendar's address, from "
        "GET /calendars/staff/{staff_id}/link; without it, or with an old one, 404"
    ),
]
PlacePath = Annotated[str, Path(pattern=ID_PATTERN, description="A site id or ad-hoc place id")]
Since = Annotated[QueryDate | None, Query(description="First local day (default: a month ago)")]
Until = Annotated[QueryDate | None, Query(description="Day after the last (default: a year on)")]


def _link_signing_key(request: Request) -> bytes:
    return link_signing_key(request.app.state.settings.hub.subject_key)


@router.get(
    "/calendars/staff/{staff_id}.ics",
    tags=["calendars"],
    response_class=Response,
    responses=problem_responses(404),
)
async def staff_feed(
    request: Request,
    staff_id: StaffPath,
    store: StoreDep,
    key: LinkKey = None,
    start: Since = None,
    end: Until = None,
) -> Response:
    """A staff member's visits as an iCalendar feed to subscribe to, at its secret address
    (``?key=``, from ``GET /calendars/staff/{staff_id}/link``): calendar apps send no token,
    so the address itself is the credential."""
    await service.require_link_key(store, _link_signing_key(request), staff_id, key)
    visits = await _calendar(request, store, CalendarKind.STAFF, staff_id, start, end)
    return _ics(f"Mobile citizen service - {staff_id}", visits, private=True)


@router.get("/calendars/places/{place_id}.ics", tags=["calendars"], response_class=Response)
async def place_feed(
    request: Request, place_id: PlacePath, store: StoreDep, start: Since = None, end: Until = None
) -> Response:
    """A place's visits as an iCalendar feed."""
    visits = await _calendar(request, store, CalendarKind.PLACE, place_id, start, end)
    return _ics(f"Mobile citizen service - {place_id}", visits)


@router.get("/calendars/districts/{district}.ics", tags=["calendars"], response_class=Response)
async def district_feed(
    request: Request, district: District, store: StoreDep, start: Since = None, end: Until = None
) -> Response:
    """A district's visits as an iCalendar feed."""
    visits = await _calendar(request, store, CalendarKind.DISTRICT, district.value, start, end)
    return _ics(f"Mobile citizen service - {district.display_name}", visits)


@router.get(
    "/calendars/staff/{staff_id}",
    tags=["calendars"],
    responses=problem_responses(404),
    response_model=CalendarOut,
    response_model_exclude_unset=True,
)
async def staff_calendar(
    request: Request,
    response: Response,
    staff_id: StaffPath,
    store: StoreDep,
    key: LinkKey = None,
    start: Since = None,
    end: Until = None,
) -> dict[str, Any]:
    """A staff member's visits, by start, in Copenhagen local time, at the same secret
    address as the feed (``?key=``)."""
    await service.require_link_key(store, _link_signing_key(request), staff_id, key)
    visits = await _calendar(request, store, CalendarKind.STAFF, staff_id, start, end)
    response.headers["Cache-Control"] = "private, no-store"
    return _json_calendar(CalendarKind.STAFF, staff_id, visits)


@router.get(
    "/calendars/staff/{staff_id}/link",
    tags=["calendars"],
    responses=problem_responses(401, 403, 422),
    summary="The secret address of a staff calendar",
)
async def staff_calendar_link(
    request: Request, response: Response, staff_id: StaffPath, store: StoreDep, _: MobilePlanner
) -> CalendarLink:
    """The current subscribe address of a staff member's calendar (``.ics``) and its JSON
    twin, key included. Hand it to the staff member only: whoever has it sees where they
    will be."""
    generation = await store.calendar_link_generation(staff_id)
    response.headers["Cache-Control"] = "no-store"
    return calendar_link(
        _link_signing_key(request), staff_id, generation, request.app.state.settings.public_url
    )


@router.post(
    "/calendars/staff/{staff_id}/link/rotate",
    tags=["calendars"],
    responses=problem_responses(401, 403, 422),
    summary="Revoke a staff calendar's address and issue a new one",
)
async def rotate_staff_calendar_link(
    request: Request, response: Response, staff_id: StaffPath, store: StoreDep, _: MobilePlanner
) -> CalendarLink:
    """A leaked link is revoked by rotating: every earlier address answers 404 from now on,
    and the new one is answered here (the staff member subscribes again)."""
    generation = await store.rotate_calendar_link(staff_id)
    response.headers["Cache-Control"] = "no-store"
    return calendar_link(
        _link_signing_key(request), staff_id, generation, request.app.state.settings.public_url
    )


@router.get(
    "/calendars/places/{place_id}",
    tags=["calendars"],
    response_model=CalendarOut,
    response_model_exclude_unset=True,
)
async def place_calendar(
    request: Request, place_id: PlacePath, store: StoreDep, start: Since = None, end: Until = None
) -> dict[str, Any]:
    """A place's visits, by start."""
    visits = await _calendar(request, store, CalendarKind.PLACE, place_id, start, end)
    return _json_calendar(CalendarKind.PLACE, place_id, visits)


@router.get(
    "/calendars/districts/{district}",
    tags=["calendars"],
    response_model=CalendarOut,
    response_model_exclude_unset=True,
)
async def district_calendar(
    request: Request, district: District, store: StoreDep, start: Since = None, end: Until = None
) -> dict[str, Any]:
    """A district's visits, by start."""
    visits = await _calendar(request, store, CalendarKind.DISTRICT, district.value, start, end)
    return _json_calendar(CalendarKind.DISTRICT, district.value, visits)


# --- planning help -------------------------------------------------------------------------


@router.get(
    "/suggestions",
    tags=["planning"],
    summary="Where to go next",
    response_model=SuggestionsOut,
    response_model_exclude_unset=True,
)
async def suggestions(
    store: StoreDep, limit: Annotated[QueryInt, Query(ge=1, le=50)] = 10
) -> dict[str, Any]:
    """Districts and places to visit next, ranked by low digital share (from the metrics
    service's share events), time since the last visit, and the kinds of place the seeds name
    for mobile citizen service; each with the reasons that produced its score."""
    found = await suggest_next(store, limit)
    return {
        "computed_at": local_iso(found.computed_at),
        "districts": [suggestion_view(s) for s in found.districts],
        "places": [suggestion_view(s) for s in found.places],
    }
