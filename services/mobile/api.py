"""The mobile service's HTTP routes: parse, authorise, call the domain and the store, map errors
to problem+json. Reads (visits, calendars, feeds, utilisation, suggestions) are open, like the
registry's, so a calendar app can subscribe to a feed; every change needs ``mobile:plan``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from services.contracts import (
    ContactRecorded,
    District,
    EventType,
    new_event,
)
from services.contracts.envelope import CloudEvent
from services.contracts.geography import COPENHAGEN
from services.mobile import domain
from services.mobile.calendar import ics_feed
from services.mobile.calendar_links import (
    CalendarLink,
    calendar_link,
    key_matches,
    link_signing_key,
)
from services.mobile.domain import (
    ContactRecord,
    HistoryRecord,
    Place,
    Series,
    Visit,
    VisitStatus,
)
from services.mobile.planning import (
    Replay,
    apply_edit,
    check_opening,
    commit,
    contended,
    count_overrides,
    derived_id,
    local_iso,
    not_found,
    occurrence_id,
    override_record,
    public_series_view,
    public_visit_view,
    require_editable,
    resolve_place,
    same_series,
    save_edits,
    series_view,
    take_step,
    transition_change,
    utc_now,
    visit_event,
    visit_view,
)
from services.mobile.schemas import (
    BookingIn,
    CancelIn,
    CompleteIn,
    ContactIn,
    OccurrenceEdit,
    SeriesIn,
    VisitEdit,
    VisitIn,
)
from services.mobile.store import Change, Contended, MobileStore
from services.plumbing.auth import MobilePlanner, Principal
from services.plumbing.idempotency import IdempotencyKey
from services.plumbing.problems import FieldProblem, Problem, problem_responses
from services.plumbing.problems import validation_problem as invalid

router = APIRouter()

WRITE_PROBLEMS = problem_responses(401, 403, 404, 409, 413, 422, 503)
STAFF_PATTERN = r"^staff-[a-z0-9]{6,32}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"


def _store(request: Request) -> MobileStore:
    store: MobileStore = request.app.state.mobile_store
    return store


StoreDep = Annotated[MobileStore, Depends(_store)]


# --- visits --------------------------------------------------------------------------------


async def _new_visit(
    store: MobileStore,
    body: VisitIn,
    place: Place,
    starts: dt.datetime,
    ends: dt.datetime,
    planner: Principal,
    idempotency_key: str | None,
    now: dt.datetime,
) -> Visit:
    """A new visit as planned from ``body`` (its opening-hours check recorded)."""
    (check,) = await check_opening(store, place, [(starts, ends)], body.override_opening_hours)
    return Visit(
        visit_id=body.visit_id or derived_id("visit", planner.actor, idempotency_key),
        version=1,
        place=place,
        starts_at=starts.astimezone(dt.UTC),
        ends_at=ends.astimezone(dt.UTC),
        staff=body.staff,
        kit=body.kit,
        services=body.services,
        slots=body.slots,
        drop_ins=body.drop_ins,
        opening_hours=check,
        override=override_record(check, planner, now),
        history=(
            HistoryRecord(at=now, by=planner.actor, action="planned", status=VisitStatus.PLANNED),
        ),
    )


@router.post("/visits", tags=["visits"], status_code=201, responses=WRITE_PROBLEMS)
async def plan_visit(
    body: VisitIn, store: StoreDep, planner: MobilePlanner, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """Plan a visit at a registry site or an ad-hoc place. 409 names the visit it collides
    with (the same staff or kit at the same time, or too little travel time between places).
    The same ``visit_id`` (or ``Idempotency-Key``) with the same plan answers the stored visit."""
    now = utc_now()
    starts, ends = domain.as_copenhagen(body.starts_at), domain.as_copenhagen(body.ends_at)
    problems = domain.window_problems(starts, ends, now)
    place = await resolve_place(store, body, problems)
    if problems:
        raise invalid(problems)
    visit = await _new_visit(store, body, place, starts, ends, planner, idempotency_key, now)
    visit_id = visit.visit_id

    def decide(current: dict[str, Visit | None], _: Series | None) -> Change:
        existing = current[visit_id]
        if existing is not None:
            if existing.plan_of() == visit.plan_of():
                raise Replay(existing)
            raise Problem(409, "already-exists", "Already exists", detail="The visit id is taken.")
        return Change([visit], [visit_event(EventType.MOBILE_VISIT_PLANNED, visit, store.source)])

    try:
        await commit(store, [visit_id], decide)
    except Replay as replay:
        return JSONResponse(visit_view(replay.visit), status_code=200)
    count_overrides([], [visit])
    return JSONResponse(
        visit_view(visit), status_code=201, headers={"Location": f"/visits/{visit_id}"}
    )


@router.post(
    "/visits/held",
    tags=["visits"],
    status_code=201,
    responses=WRITE_PROBLEMS,
    summary="Log a visit that already took place",
)
async def log_held_visit(
    body: VisitIn, store: StoreDep, planner: MobilePlanner, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """A visit the team held without planning it here first (an "as needed" stop, or a day
    on paper), logged afterwards with the times it actually ran: it is stored as completed
    (publishing ``visit.planned`` and ``visit.completed``), and its contacts are then recorded
    with ``POST /visits/{id}/contacts`` and their own ``at``. The same checks as planning apply
    (staff and kit cannot be in two places at once, opening hours), except that the window must
    be over, and at most 400 days ago. The same ``visit_id`` (or ``Idempotency-Key``) with the
    same visit answers the stored one (200)."""
    now = utc_now()
    starts, ends = domain.as_copenhagen(body.starts_at), domain.as_copenhagen(body.ends_at)
    problems = domain.held_window_problems(starts, ends, now)
    place = await resolve_place(store, body, problems)
    if problems:
        raise invalid(problems)
    planned = await _new_visit(store, body, place, starts, ends, planner, idempotency_key, now)
    visit_id = planned.visit_id
    visit = planned.model_copy(
        update={
            "version": 2,
            "status": VisitStatus.COMPLETED,
            "started_at": planned.starts_at,
            "ended_at": planned.ends_at,
            "history": (
                *planned.history,
                HistoryRecord(
                    at=now, by=planner.actor, action="completed", status=VisitStatus.COMPLETED
                ),
            ),
        }
    )

    def decide(current: dict[str, Visit | None], _: Series | None) -> Change:
        existing = current[visit_id]
        if existing is not None:
            if existing.plan_of() == visit.plan_of() and existing.status is visit.status:
                raise Replay(existing)
            raise Problem(409, "already-exists", "Already exists", detail="The visit id is taken.")
        return Change(
            [visit],
            [
                visit_event(EventType.MOBILE_VISIT_PLANNED, planned, store.source),
                visit_event(EventType.MOBILE_VISIT_COMPLETED, visit, store.source),
            ],
        )

    try:
        await commit(store, [visit_id], decide)
    except Replay as replay:
        return JSONResponse(visit_view(replay.visit), status_code=200)
    count_overrides([], [visit])
    return JSONResponse(
        visit_view(visit), status_code=201, headers={"Location": f"/visits/{visit_id}"}
    )


@router.get("/visits/{visit_id}", tags=["visits"], responses=problem_responses(404))
async def get_visit(visit_id: str, store: StoreDep) -> dict[str, Any]:
    """One visit, with its booking count (public: no staff or actor ids)."""
    visit = await store.visit(visit_id)
    if visit is None:
        raise not_found(f"visit {visit_id}")
    return public_visit_view(visit, len(await store.bookings(visit_id)))


@router.patch("/visits/{visit_id}", tags=["visits"], responses=WRITE_PROBLEMS)
async def edit_visit(
    visit_id: str, body: VisitEdit, store: StoreDep, planner: MobilePlanner
) -> dict[str, Any]:
    """Change a planned or confirmed visit (for a series occurrence: "this one" only); the
    same conflict and opening-hour checks as planning apply."""
    visit = await store.visit(visit_id)
    if visit is None:
        raise not_found(f"visit {visit_id}")
    require_editable(visit)
    edited = apply_edit(
        visit,
        planner,
        utc_now(),
        starts_at=domain.as_copenhagen(body.starts_at) if body.starts_at else None,
        ends_at=domain.as_copenhagen(body.ends_at) if body.ends_at else None,
        fields=body.model_dump(
            include={"staff", "kit", "services", "slots", "drop_ins"}, exclude_none=True
        ),
    )
    (saved,) = await save_edits(
        store, planner, [edited], {visit_id: visit.version}, body.override_opening_hours
    )
    return visit_view(saved)


@router.post("/visits/{visit_id}/confirm", tags=["visits"], responses=WRITE_PROBLEMS)
async def confirm_visit(
    visit_id: str, store: StoreDep, planner: MobilePlanner, idempotency_key: IdempotencyKey
) -> dict[str, Any]:
    """planned -> confirmed; any other state is a 409 (a retry with the same
    ``Idempotency-Key`` answers the visit instead)."""
    return visit_view(
        await take_step(store, visit_id, VisitStatus.CONFIRMED, planner, idempotency_key)
    )


@router.post("/visits/{visit_id}/start", tags=["visits"], responses=WRITE_PROBLEMS)
async def start_visit(
    visit_id: str, store: StoreDep, planner: MobilePlanner, idempotency_key: IdempotencyKey
) -> dict[str, Any]:
    """confirmed -> in_progress (the actual start is now); any other state is a 409."""
    return visit_view(
        await take_step(store, visit_id, VisitStatus.IN_PROGRESS, planner, idempotency_key)
    )


@router.post("/visits/{visit_id}/complete", tags=["visits"], responses=WRITE_PROBLEMS)
async def complete_visit(
    visit_id: str,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
    body: CompleteIn | None = None,
) -> dict[str, Any]:
    """in_progress -> completed; publishes VisitCompleted with the actual times (default:
    when it was started, and now)."""
    visit = await take_step(
        store, visit_id, VisitStatus.COMPLETED, planner, idempotency_key, actual=body
    )
    return visit_view(visit)


@router.post("/visits/{visit_id}/cancel", tags=["visits"], responses=WRITE_PROBLEMS)
async def cancel_visit(
    visit_id: str,
    body: CancelIn,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
) -> dict[str, Any]:
    """Cancel a planned or confirmed visit with a reason code; frees its staff and kit and
    publishes VisitCancelled, which is how the booked citizens get notified."""
    visit = await take_step(
        store, visit_id, VisitStatus.CANCELLED, planner, idempotency_key, reason=body.reason
    )
    return visit_view(visit, len(await store.bookings(visit_id)))


# --- bookings ------------------------------------------------------------------------------


def _slot_window(visit: Visit, slot: int) -> tuple[str, str]:
    length = (visit.ends_at - visit.starts_at) / visit.slots
    start = visit.starts_at + length * slot
    return local_iso(start), local_iso(start + length)


@router.post("/visits/{visit_id}/bookings", tags=["bookings"], responses=WRITE_PROBLEMS)
async def book(
    visit_id: str, body: BookingIn, store: StoreDep, planner: MobilePlanner
) -> JSONResponse:
    """Book a citizen into a slot (the first free one, or ``slot``); only the booking reference
    is kept. The same reference again answers its slot (200); a full visit or a taken slot is a
    409; concurrent bookings never share a slot."""
    created = True

    def decide(visit: Visit | None, bookings: dict[str, int]) -> int | None:
        nonlocal created
        if visit is None:
            raise not_found(f"visit {visit_id}")
        if body.booking_ref in bookings:
            if body.slot is not None and bookings[body.booking_ref] != body.slot:
                raise Problem(
                    409, "already-booked", "Already booked", detail="The reference has a slot."
                )
            created = False
            return None
        if visit.status not in domain.BOOKABLE:
            raise Problem(
                409,
                "visit-not-bookable",
                "Visit not bookable",
                detail=f"The visit is {visit.status.value}.",
            )
        taken = set(bookings.values())
        if body.slot is not None:
            if body.slot >= visit.slots:
                raise invalid(
                    [FieldProblem(field="body.slot", message=f"the visit has {visit.slots} slots")]
                )
            if body.slot in taken:
                raise Problem(409, "slot-taken", "Slot taken", detail="Choose another slot.")
            return body.slot
        free = [s for s in range(visit.slots) if s not in taken]
        if not free:
            raise Problem(409, "fully-booked", "Fully booked", detail="No slot is free.")
        return free[0]

    try:
        slot = await store.book(visit_id, decide, body.booking_ref)
    except Contended:
        raise contended() from None
    visit = await store.visit(visit_id)
    assert visit is not None
    starts, ends = _slot_window(visit, slot)
    return JSONResponse(
        {"booking_ref": body.booking_ref, "slot": slot, "starts_at": starts, "ends_at": ends},
        status_code=201 if created else 200,
    )


@router.get("/visits/{visit_id}/bookings", tags=["bookings"], responses=problem_responses(404))
async def list_bookings(visit_id: str, store: StoreDep) -> list[dict[str, Any]]:
    """A visit's bookings by slot."""
    visit = await store.visit(visit_id)
    if visit is None:
        raise not_found(f"visit {visit_id}")
    bookings = await store.bookings(visit_id)
    return [
        {
            "booking_ref": ref,
            "slot": slot,
            **dict(zip(("starts_at", "ends_at"), _slot_window(visit, slot), strict=True)),
        }
        for ref, slot in sorted(bookings.items(), key=lambda item: item[1])
    ]


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
    if not await store.unbook(visit_id, booking_ref):
        raise not_found(f"booking {booking_ref} on visit {visit_id}")
    return Response(status_code=204)


# --- contacts ------------------------------------------------------------------------------


@router.post("/visits/{visit_id}/contacts", tags=["contacts"], responses=WRITE_PROBLEMS)
async def record_contact(
    visit_id: str,
    body: ContactIn,
    store: StoreDep,
    planner: MobilePlanner,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Record one contact at a visit in progress or completed; publishes ContactRecorded in
    the district of the visit's place. A retry with the same ``contact_id`` (or
    ``Idempotency-Key``) is answered 200 and counted once."""
    now = utc_now()
    at = domain.as_copenhagen(body.at) if body.at is not None else now
    if at > now + dt.timedelta(minutes=5):
        raise invalid([FieldProblem(field="body.at", message="is in the future")])
    contact = ContactRecord(
        contact_id=body.contact_id or derived_id("contact", planner.actor, idempotency_key),
        service=body.service,
        mode=body.mode,
        onboarded_to_digital=body.onboarded_to_digital,
        at=at.astimezone(dt.UTC),
        booking_ref=body.booking_ref,
    )
    compared = {"service", "mode", "onboarded_to_digital", "booking_ref"} | (
        {"at"} if body.at is not None else set()
    )
    stored = contact
    # The mobile stop at the visit's site, looked up before the transaction (``decide`` runs
    # inside it and cannot wait); used only if the visit is still at that site there.
    before = await store.visit(visit_id)
    stop_site = before.place.site_id if before is not None else None
    stop = domain.mobile_stop_of(await store.entries_at(stop_site)) if stop_site else None

    def decide(visit: Visit | None, existing: ContactRecord | None) -> CloudEvent | None:
        nonlocal stored
        if visit is None:
            raise not_found(f"visit {visit_id}")
        if existing is not None:
            if existing.model_dump(include=compared) != contact.model_dump(include=compared):
                raise Problem(
                    409,
                    "contact-id-reused",
                    "Contact id reused",
                    detail="A different contact was recorded under this id.",
                )
            stored = existing
            return None
        if visit.status not in domain.RECORDABLE:
            raise Problem(
                409,
                "visit-not-in-progress",
                "Visit not in progress",
                detail=f"The visit is {visit.status.value}; contacts are recorded once it "
                "is in progress or completed.",
            )
        if contact.service not in visit.services:
            raise invalid([FieldProblem(field="body.service", message="not offered on this visit")])
        payload = ContactRecorded(
            contact_id=contact.contact_id,
            visit_id=visit_id,
            district=visit.place.district,
            service=contact.service,
            mode=contact.mode,
            onboarded_to_digital=contact.onboarded_to_digital,
            at=contact.at,
            site_id=visit.place.site_id,
            entry_id=stop if visit.place.site_id == stop_site else None,
        )
        return new_event(EventType.MOBILE_CONTACT_RECORDED, payload, source=store.source)

    try:
        created = await store.record_contact(visit_id, decide, contact)
    except Contended:
        raise contended() from None
    body_out = {**stored.model_dump(mode="json"), "visit_id": visit_id, "at": local_iso(stored.at)}
    return JSONResponse(body_out, status_code=201 if created else 200)


@router.get("/visits/{visit_id}/contacts", tags=["contacts"], responses=problem_responses(404))
async def list_contacts(visit_id: str, store: StoreDep) -> list[dict[str, Any]]:
    """A visit's contacts, by time."""
    if await store.visit(visit_id) is None:
        raise not_found(f"visit {visit_id}")
    return [
        {**c.model_dump(mode="json"), "at": local_iso(c.at)} for c in await store.contacts(visit_id)
    ]


# --- utilisation ---------------------------------------------------------------------------


async def _usage(store: MobileStore, visits: Sequence[Visit]) -> dict[str, object]:
    triples = [
        (v, await store.contacts(v.visit_id), len(await store.bookings(v.visit_id))) for v in visits
    ]
    return domain.utilisation(triples)


@router.get(
    "/visits/{visit_id}/utilisation", tags=["utilisation"], responses=problem_responses(404)
)
async def visit_utilisation(visit_id: str, store: StoreDep) -> dict[str, object]:
    """Contacts per staffed hour, bookings used and drop-ins of one visit."""
    visit = await store.visit(visit_id)
    if visit is None:
        raise not_found(f"visit {visit_id}")
    return {"visit_id": visit_id, **await _usage(store, [visit])}


@router.get("/places/{place_id}/utilisation", tags=["utilisation"])
async def place_utilisation(
    place_id: Annotated[str, Path(pattern=ID_PATTERN)],
    store: StoreDep,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[str, object]:
    """The same figures over every visit to a place (in ``[start, end)`` if given)."""
    since, until = _range(start, end, default_past=3660, default_future=3660)
    visits = await store.calendar("place", place_id, since, until)
    return {"place_id": place_id, **await _usage(store, visits)}


# --- recurring series ----------------------------------------------------------------------


@router.post("/series", tags=["series"], status_code=201, responses=WRITE_PROBLEMS)
async def plan_series(
    body: SeriesIn, store: StoreDep, planner: MobilePlanner, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """Plan recurring visits from an RFC 5545 RRULE (e.g. ``FREQ=WEEKLY;BYDAY=TU;COUNT=10``)
    at the first start's Copenhagen wall-clock time, across DST changes. Danish public
    holidays are skipped; ``exceptions`` cancel or move single dates. All visits are checked
    and saved together: one collision refuses the whole series (409 naming the visit)."""
    now = utc_now()
    problems: list[FieldProblem] = []
    place = await resolve_place(store, body, problems)
    first = domain.as_copenhagen(body.first_starts_at).astimezone(COPENHAGEN).replace(tzinfo=None)
    duration = dt.timedelta(minutes=body.duration_minutes)
    cancelled = [e.date for e in body.exceptions if e.cancelled]
    moved = {e.date: e.moved_to for e in body.exceptions if e.moved_to is not None}
    expansion = domain.Expansion()
    try:
        expansion = domain.expand_rule(body.rrule, first, duration, cancelled, moved)
    except domain.RuleError as error:
        problems.append(FieldProblem(field="body.rrule", message=str(error)))
    for occ in expansion.occurrences:
        problems.extend(
            domain.window_problems(occ.starts_at, occ.ends_at, now, f"occurrences[{occ.date}]")
        )
    if not expansion.occurrences and not problems:
        problems.append(FieldProblem(field="body.rrule", message="gives no visit"))
    if problems:
        raise invalid(problems)
    checks = await check_opening(
        store,
        place,
        [(o.starts_at, o.ends_at) for o in expansion.occurrences],
        body.override_opening_hours,
    )
    series_id = body.series_id or derived_id("series", planner.actor, idempotency_key)
    visits = [
        Visit(
            visit_id=occurrence_id(series_id, occ.date),
            version=1,
            place=place,
            starts_at=occ.starts_at.astimezone(dt.UTC),
            ends_at=occ.ends_at.astimezone(dt.UTC),
            staff=body.staff,
            kit=body.kit,
            services=body.services,
            slots=body.slots,
            drop_ins=body.drop_ins,
            series_id=series_id,
            occurrence_date=occ.date,
            opening_hours=check,
            override=override_record(check, planner, now),
            history=(
                HistoryRecord(
                    at=now, by=planner.actor, action="planned", status=VisitStatus.PLANNED
                ),
            ),
        )
        for occ, check in zip(expansion.occurrences, checks, strict=True)
    ]
    series = Series(
        series_id=series_id,
        version=1,
        rrule=body.rrule,
        first_starts_at=first,
        duration_minutes=body.duration_minutes,
        cancelled=tuple(cancelled),
        moved={
            d: domain.as_copenhagen(m).astimezone(COPENHAGEN).replace(tzinfo=None)
            for d, m in moved.items()
        },
        occurrences={v.occurrence_date: v.visit_id for v in visits if v.occurrence_date},
        skipped=tuple((s.date, s.reason) for s in expansion.skipped),
    )

    def decide(current: dict[str, Visit | None], existing: Series | None) -> Change:
        if (
            existing is not None
            and same_series(existing, series)
            and all(
                (stored := current.get(v.visit_id)) is not None and stored.plan_of() == v.plan_of()
                for v in visits
            )
        ):
            raise Replay(visits[0])  # a retry of this very request: answer what is stored
        if existing is not None or any(v is not None for v in current.values()):
            raise Problem(409, "already-exists", "Already exists", detail="The series id is taken.")
        events = [visit_event(EventType.MOBILE_VISIT_PLANNED, v, store.source) for v in visits]
        return Change(visits, events, series=series)

    try:
        await commit(store, [v.visit_id for v in visits], decide, series_id=series_id)
    except Replay:
        stored = await _series_or_404(store, series_id)
        return JSONResponse(
            series_view(stored, await store.visits(stored.occurrences.values())), status_code=200
        )
    count_overrides([], visits)
    return JSONResponse(
        series_view(series, visits), status_code=201, headers={"Location": f"/series/{series_id}"}
    )


async def _series_or_404(store: MobileStore, series_id: str) -> Series:
    series = await store.series(series_id)
    if series is None:
        raise not_found(f"series {series_id}")
    return series


@router.get("/series/{series_id}", tags=["series"], responses=problem_responses(404))
async def get_series(series_id: str, store: StoreDep) -> dict[str, Any]:
    """A series with its rule, skipped dates and visits (public: no staff or actor ids)."""
    series = await _series_or_404(store, series_id)
    return public_series_view(series, await store.visits(series.occurrences.values()))


class Scope(StrEnum):
    """Which occurrences an edit of a series applies to, as calendar apps ask."""

    THIS = "this"
    FOLLOWING = "following"


async def _scoped(store: MobileStore, series: Series, day: dt.date, scope: Scope) -> list[Visit]:
    if day not in series.occurrences:
        raise not_found(f"occurrence on {day.isoformat()} in series {series.series_id}")
    days = [
        d for d in sorted(series.occurrences) if d == day or (scope is Scope.FOLLOWING and d > day)
    ]
    return await store.visits(series.occurrences[d] for d in days)


@router.patch("/series/{series_id}/occurrences/{day}", tags=["series"], responses=WRITE_PROBLEMS)
async def edit_occurrences(
    series_id: str,
    day: dt.date,
    body: OccurrenceEdit,
    store: StoreDep,
    planner: MobilePlanner,
    scope: Scope = Scope.THIS,
) -> dict[str, Any]:
    """Edit one occurrence (``scope=this``) or it and all following (``scope=following``):
    a new start time (kept as Copenhagen wall-clock time on each visit's own date), duration,
    staff, kit, services, slots. Visits already under way or over are left as they are."""
    if body.moved_to is not None and scope is Scope.FOLLOWING:
        raise invalid(
            [FieldProblem(field="body.moved_to", message="moves one occurrence; use scope=this")]
        )
    series = await _series_or_404(store, series_id)
    targets = await _scoped(store, series, day, scope)
    if scope is Scope.THIS:
        require_editable(targets[0])
    targets = [v for v in targets if v.status in domain.EDITABLE]
    now = utc_now()
    fields = body.model_dump(
        include={"staff", "kit", "services", "slots", "drop_ins"}, exclude_none=True
    )
    edits = []
    for visit in targets:
        local_start = visit.starts_at.astimezone(COPENHAGEN)
        duration = (
            dt.timedelta(minutes=body.duration_minutes)
            if body.duration_minutes
            else visit.ends_at.astimezone(COPENHAGEN).replace(tzinfo=None)
            - local_start.replace(tzinfo=None)
        )
        if body.moved_to is not None:
            new_local = domain.as_copenhagen(body.moved_to).astimezone(COPENHAGEN)
            start_day, start_time = new_local.date(), new_local.time().replace(tzinfo=None)
        else:
            start_day = local_start.date()
            start_time = (
                dt.time.fromisoformat(body.start_time)
                if body.start_time
                else local_start.time().replace(tzinfo=None)
            )
        starts, ends = domain.local_window(start_day, start_time, duration)
        edits.append(apply_edit(visit, planner, now, starts_at=starts, ends_at=ends, fields=fields))
    revision = {
        "from_date": day.isoformat(),
        "scope": scope.value,
        "by": planner.actor,
        "at": now.isoformat(),
        "changed": sorted(body.model_dump(exclude_none=True, exclude={"override_opening_hours"})),
    }
    updated = series.model_copy(
        update={"version": series.version + 1, "revisions": (*series.revisions, revision)}
    )
    await save_edits(
        store,
        planner,
        edits,
        {v.visit_id: v.version for v in targets},
        body.override_opening_hours,
        series=updated,
    )
    return series_view(updated, await store.visits(updated.occurrences.values()))


@router.post(
    "/series/{series_id}/occurrences/{day}/cancel", tags=["series"], responses=WRITE_PROBLEMS
)
async def cancel_occurrences(
    series_id: str,
    day: dt.date,
    body: CancelIn,
    store: StoreDep,
    planner: MobilePlanner,
    scope: Scope = Scope.THIS,
) -> dict[str, Any]:
    """Cancel one occurrence or it and all following (those not yet under way); each
    cancelled visit publishes VisitCancelled."""
    series = await _series_or_404(store, series_id)
    targets = await _scoped(store, series, day, scope)
    ids = [v.visit_id for v in targets]
    # Replay: an earlier attempt of this very request cancelled it already.
    with contextlib.suppress(Replay):
        await commit(
            store,
            ids,
            transition_change(
                store,
                ids,
                VisitStatus.CANCELLED,
                planner,
                reason=body.reason,
                skip_invalid=scope is Scope.FOLLOWING,
                request=derived_id("req", planner.actor, None),
            ),
        )
    return series_view(series, await store.visits(series.occurrences.values()))


# --- calendars -----------------------------------------------------------------------------


class CalendarKind(StrEnum):
    """Whose calendar: a staff member's, a place's or a district's."""

    STAFF = "staff"
    PLACE = "place"
    DISTRICT = "district"


def _range(
    start: dt.date | None, end: dt.date | None, *, default_past: int, default_future: int
) -> tuple[dt.datetime, dt.datetime]:
    today = utc_now().astimezone(COPENHAGEN).date()
    first = start or today - dt.timedelta(days=default_past)
    last = end or today + dt.timedelta(days=default_future)
    if last <= first:
        raise invalid([FieldProblem(field="query.end", message="must be after start")])
    return (
        dt.datetime.combine(first, dt.time(), COPENHAGEN),
        dt.datetime.combine(last, dt.time(), COPENHAGEN),
    )


async def _calendar(
    request: Request,
    store: MobileStore,
    kind: CalendarKind,
    target: str,
    start: dt.date | None,
    end: dt.date | None,
) -> list[Visit]:
    settings = request.app.state.settings
    since, until = _range(
        start,
        end,
        default_past=settings.calendar_past_days,
        default_future=settings.calendar_future_days,
    )
    return await store.calendar(kind.value, target, since, until)


def _ics(name: str, visits: Sequence[Visit], *, private: bool = False) -> Response:
    return Response(
        ics_feed(name, visits, utc_now()),
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
Since = Annotated[dt.date | None, Query(description="First local day (default: a month ago)")]
Until = Annotated[dt.date | None, Query(description="Day after the last (default: a year on)")]


def _link_signing_key(request: Request) -> bytes:
    return link_signing_key(request.app.state.settings.hub.subject_key)


async def _require_link_key(
    request: Request, store: MobileStore, staff_id: str, key: str | None
) -> None:
    """404 unless ``key`` is the current key of the staff calendar's address: the same answer
    for a wrong, old or missing key, so the feed never confirms that a staff id exists."""
    generation = await store.calendar_link_generation(staff_id)
    if not key_matches(_link_signing_key(request), staff_id, generation, key):
        raise not_found("calendar at this address")


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
    await _require_link_key(request, store, staff_id, key)
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


@router.get("/calendars/staff/{staff_id}", tags=["calendars"], responses=problem_responses(404))
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
    await _require_link_key(request, store, staff_id, key)
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


@router.get("/calendars/places/{place_id}", tags=["calendars"])
async def place_calendar(
    request: Request, place_id: PlacePath, store: StoreDep, start: Since = None, end: Until = None
) -> dict[str, Any]:
    """A place's visits, by start."""
    visits = await _calendar(request, store, CalendarKind.PLACE, place_id, start, end)
    return _json_calendar(CalendarKind.PLACE, place_id, visits)


@router.get("/calendars/districts/{district}", tags=["calendars"])
async def district_calendar(
    request: Request, district: District, store: StoreDep, start: Since = None, end: Until = None
) -> dict[str, Any]:
    """A district's visits, by start."""
    visits = await _calendar(request, store, CalendarKind.DISTRICT, district.value, start, end)
    return _json_calendar(CalendarKind.DISTRICT, district.value, visits)


# --- planning help -------------------------------------------------------------------------


def _suggestion_view(s: domain.Suggestion) -> dict[str, Any]:
    return {
        "target": s.target,
        "name": s.name,
        "district": s.district.value,
        "score": s.score,
        "reasons": [
            {"factor": r.factor, "points": r.points, "detail": r.detail} for r in s.reasons
        ],
    }


@router.get("/suggestions", tags=["planning"], summary="Where to go next")
async def suggestions(
    store: StoreDep, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> dict[str, Any]:
    """Districts and places to visit next, ranked by low digital share (from the metrics
    service's share events), time since the last visit, and the kinds of place the seeds name
    for mobile citizen service; each with the reasons that produced its score."""
    now = utc_now()
    shares = await store.shares()
    visited = {p.place_id: p for p in await store.places()}
    places: dict[str, Place] = {}
    for site in await store.sites():
        known = visited.get(site.site_id)
        kind = known.kind if known else domain.site_kind(await store.entries_at(site.site_id))
        places[site.site_id] = Place(
            place_id=site.site_id,
            site_id=site.site_id,
            name=site.name,
            district=site.district,
            latitude=site.latitude,
            longitude=site.longitude,
            kind=kind,
        )
    for place in visited.values():
        if place.site_id is None:
            places[place.place_id] = place
    place_last = await store.last_visits("place", places)
    district_last = {
        District(k): v
        for k, v in (await store.last_visits("district", [d.value for d in District])).items()
    }
    return {
        "computed_at": local_iso(now),
        "districts": [
            _suggestion_view(s)
            for s in domain.suggest_districts(shares, district_last, now)[:limit]
        ],
        "places": [
            _suggestion_view(s)
            for s in domain.suggest_places(places.values(), shares, place_last, now)[:limit]
        ],
    }
