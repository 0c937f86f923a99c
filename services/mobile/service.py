"""The mobile service's use cases for visits: planning, changing and running them, and reading
calendars; with the steps every planning use case shares (resolving a place, checking opening
hours, saving through the store's atomic step). The other use cases build on these:
``series.py`` (recurring visits), ``attendance.py`` (bookings, contacts, utilisation) and
``suggestions.py`` (where to go next).

Each use case reads and writes through :class:`~services.mobile.store.MobileStore`, applies the
rules of ``domain.py`` and answers domain objects; it refuses with a
:class:`~services.mobile.domain.Refusal` (or the store's ``VisitConflict`` / ``Contended``),
which ``api.py`` maps to problem+json. Nothing here knows HTTP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from services.contracts import (
    District,
    EventType,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
    new_event,
)
from services.contracts.envelope import CloudEvent
from services.contracts.geography import COPENHAGEN
from services.mobile import domain
from services.mobile.calendar_links import key_matches
from services.mobile.domain import (
    CancelReason,
    HistoryRecord,
    Invalid,
    NotFound,
    OutsideOpeningHours,
    OverrideRecord,
    Place,
    Series,
    StateConflict,
    Visit,
    VisitStatus,
)
from services.mobile.metrics import OPENING_HOUR_OVERRIDES, PLANS_REFUSED
from services.mobile.schemas import (
    CompleteIn,
    PlanFields,
    VisitEdit,
    VisitIn,
)
from services.mobile.store import Change, Decide, MobileStore, VisitConflict
from services.plumbing.auth import Principal
from services.plumbing.problems import FieldProblem, coordinate_problems


def utc_now() -> dt.datetime:
    """The current instant (UTC)."""
    return dt.datetime.now(dt.UTC)


T = TypeVar("T")


@dataclass(frozen=True)
class Saved(Generic[T]):
    """What a create answers: the stored thing, and whether this request created it (False:
    a retry of an earlier request, answered with what that one stored)."""

    value: T
    created: bool


def derived_id(prefix: str, subject: str, key: str | None) -> str:
    """An id derived from the caller's Idempotency-Key (a retry gets the same id), or new.

    ``subject`` is the caller's pseudonymous id (``Principal.actor``), never the raw token sub.
    """
    if key is None:
        return f"{prefix}-{uuid.uuid4().hex[:16]}"
    digest = hashlib.sha256(f"{subject}\n{key}".encode()).hexdigest()
    return f"{prefix}-{digest[:16]}"


async def commit(
    store: MobileStore, ids: Sequence[str], decide: Decide, *, series_id: str | None = None
) -> Change:
    """Save through ``store.commit``, counting a refusal for a collision."""
    try:
        return await store.commit(ids, decide, series_id=series_id)
    except VisitConflict as error:
        PLANS_REFUSED.labels(error.conflict.kind.value).inc()
        raise


async def visit_or_not_found(store: MobileStore, visit_id: str) -> Visit:
    """The visit, or :class:`NotFound`."""
    visit = await store.visit(visit_id)
    if visit is None:
        raise NotFound(f"visit {visit_id}")
    return visit


def visit_event(kind: EventType, visit: Visit, source: str) -> CloudEvent:
    """The visit event of ``kind`` (planned, cancelled, completed) for ``visit``."""
    model = {
        EventType.MOBILE_VISIT_PLANNED: VisitPlanned,
        EventType.MOBILE_VISIT_CANCELLED: VisitCancelled,
        EventType.MOBILE_VISIT_COMPLETED: VisitCompleted,
    }[kind]
    completed = kind is EventType.MOBILE_VISIT_COMPLETED
    payload = model(
        visit_id=visit.visit_id,
        site_id=visit.place.site_id,
        district=visit.place.district,
        # A completed visit reports the times it actually ran.
        starts_at=(visit.started_at if completed else None) or visit.starts_at,
        ends_at=(visit.ended_at if completed else None) or visit.ends_at,
        services=visit.services,
        staff=visit.staff,
    )
    return new_event(kind, payload, source=source)


# --- shared steps of planning --------------------------------------------------------------


async def resolve_place(
    store: MobileStore, body: PlanFields, problems: list[FieldProblem]
) -> Place:
    """The place of a plan; unknown sites and coordinates outside Copenhagen go to
    ``problems`` (a placeholder place is returned so the other checks can still run)."""
    if body.site_id is not None:
        site = await store.site(body.site_id)
        if site is None:
            problems.append(FieldProblem(field="body.site_id", message="no such site"))
            return Place(
                place_id=body.site_id,
                site_id=body.site_id,
                name=body.site_id,
                district=District.INDRE_BY,
                latitude=0,
                longitude=0,
                kind=domain.PlaceKind.OTHER,
            )
        kind = body.place_kind or domain.site_kind(await store.entries_at(site.site_id))
        return Place(
            place_id=site.site_id,
            site_id=site.site_id,
            name=site.name,
            district=site.district,
            latitude=site.latitude,
            longitude=site.longitude,
            kind=kind,
        )
    adhoc = body.place
    assert adhoc is not None  # the schema requires site_id or place
    problems.extend(coordinate_problems(adhoc.latitude, adhoc.longitude, "body.place"))
    place_id = adhoc.place_id or domain.adhoc_place_id(adhoc.name, adhoc.district)
    if adhoc.place_id is not None and await store.site(adhoc.place_id) is not None:
        problems.append(FieldProblem(field="body.place.place_id", message="is a registry site"))
    return Place(
        place_id=place_id,
        site_id=None,
        name=adhoc.name,
        district=adhoc.district,
        latitude=adhoc.latitude,
        longitude=adhoc.longitude,
        kind=adhoc.kind,
    )


async def check_opening(
    store: MobileStore,
    place: Place,
    windows: Sequence[tuple[dt.datetime, dt.datetime]],
    override: bool,
) -> list[domain.OpeningCheck]:
    """The opening-hours verdict of each window; refuses (:class:`OutsideOpeningHours`)
    windows outside the hours unless the planner overrides explicitly."""
    if place.site_id is None:
        return ["unknown"] * len(windows)
    entries = await store.entries_at(place.site_id)
    checks = [domain.opening_check(entries, start, end) for start, end in windows]
    outside = [start for (start, _), c in zip(windows, checks, strict=True) if c == "outside"]
    if outside and not override:
        PLANS_REFUSED.labels("outside_opening_hours").inc()
        raise OutsideOpeningHours(place.name, outside)
    return checks


def override_record(
    check: domain.OpeningCheck, who: Principal, now: dt.datetime
) -> OverrideRecord | None:
    """The record of an opening-hours override, when the window is outside them."""
    return OverrideRecord(by=who.actor, at=now) if check == "outside" else None


def count_overrides(before: Sequence[Visit | None], after: Sequence[Visit]) -> None:
    """Count the overrides a saved change made (not the ones a refused change would have)."""
    old = {v.visit_id: v.override for v in before if v is not None}
    OPENING_HOUR_OVERRIDES.inc(
        sum(v.override is not None and old.get(v.visit_id) != v.override for v in after)
    )


def with_history(
    visit: Visit,
    who: Principal,
    now: dt.datetime,
    action: str,
    status: VisitStatus | None = None,
    reason: CancelReason | None = None,
    request: str | None = None,
) -> tuple[HistoryRecord, ...]:
    """The visit's history with one more record."""
    record = HistoryRecord(
        at=now,
        by=who.actor,
        action=action,
        status=status or visit.status,
        reason=reason,
        request=request,
    )
    return (*visit.history, record)


class Replay(Exception):
    """The request was done already; answer with the stored visit."""

    def __init__(self, visit: Visit) -> None:
        super().__init__(visit.visit_id)
        self.visit = visit


def already_exists(what: str) -> StateConflict:
    """The refusal of a create whose id is taken by something else."""
    return StateConflict("already-exists", "Already exists", f"The {what} id is taken.")


def apply_edit(
    visit: Visit,
    who: Principal,
    now: dt.datetime,
    *,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    fields: dict[str, Any],
) -> Visit:
    """``visit`` with the planner's changes, its version raised and the edit recorded."""
    updates: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if starts_at is not None:
        updates["starts_at"] = starts_at.astimezone(dt.UTC)
    if ends_at is not None:
        updates["ends_at"] = ends_at.astimezone(dt.UTC)
    updates["version"] = visit.version + 1
    updates["history"] = with_history(visit, who, now, "edited")
    return visit.model_copy(update=updates)


def _changed_meanwhile(what: str) -> StateConflict:
    return StateConflict("changed-meanwhile", "Changed meanwhile", what)


async def save_edits(
    store: MobileStore,
    who: Principal,
    edits: Sequence[Visit],
    based_on: dict[str, int],
    override: bool,
    *,
    series: Series | None = None,
) -> list[Visit]:
    """Validate edited visits (window, opening hours) and save them atomically, as long as no
    one changed them since they were read (else a ``changed-meanwhile`` refusal)."""
    now = utc_now()
    problems: list[FieldProblem] = []
    for visit in edits:
        prefix = "body" if len(edits) == 1 else f"visits[{visit.visit_id}]"
        problems.extend(domain.window_problems(visit.starts_at, visit.ends_at, now, prefix))
    if problems:
        raise Invalid(problems)
    final = []
    for visit in edits:
        (check,) = await check_opening(
            store, visit.place, [(visit.starts_at, visit.ends_at)], override
        )
        final.append(
            visit.model_copy(
                update={
                    "opening_hours": check,
                    "override": override_record(check, who, now) or visit.override,
                }
            )
        )

    def decide(current: dict[str, Visit | None], stored: Series | None) -> Change:
        # The series revision is based on the version read; a concurrent edit of the series
        # must not be overwritten silently.
        if series is not None and (stored is None or stored.version != series.version - 1):
            raise _changed_meanwhile(
                f"Series {series.series_id} changed while this edit was checked."
            )
        if all(current.get(v.visit_id) == v for v in final) and (
            series is None or stored == series
        ):
            # An earlier attempt of this very request was stored (its EXEC reply was lost, so
            # it is being retried): nothing more to write.
            return Change()
        for visit_id, version in based_on.items():
            seen = current.get(visit_id)
            if seen is None or seen.version != version:
                raise _changed_meanwhile(
                    f"Visit {visit_id} changed while this edit was checked; send it again."
                )
        events = [visit_event(EventType.MOBILE_VISIT_PLANNED, v, store.source) for v in final]
        return Change(final, events, series=series)

    await commit(
        store, list(based_on), decide, series_id=series.series_id if series is not None else None
    )
    count_overrides(edits, final)
    return final


def require_editable(visit: Visit) -> None:
    """Refuse changes to a visit that has started, ended or was cancelled."""
    if visit.status not in domain.EDITABLE:
        raise StateConflict(
            "invalid-transition",
            "Visit cannot change",
            f"A {visit.status.value} visit cannot be edited.",
        )


def transition_change(
    store: MobileStore,
    visit_ids: Sequence[str],
    target: VisitStatus,
    who: Principal,
    *,
    reason: CancelReason | None = None,
    actual: CompleteIn | None = None,
    skip_invalid: bool = False,
    request: str | None = None,
) -> Callable[[dict[str, Visit | None], Series | None], Change]:
    """The decision that moves visits to ``target`` (see ``MobileStore.commit``)."""

    def decide(current: dict[str, Visit | None], _: Series | None) -> Change:
        now = utc_now()
        change = Change()
        for visit_id in visit_ids:
            visit = current[visit_id]
            if visit is None:
                raise NotFound(f"visit {visit_id}")
            if request is not None and any(h.request == request for h in visit.history):
                # This very step was taken already (a client retry with the same key, or our
                # own retry after a lost EXEC reply): answer it and change nothing.
                if len(visit_ids) == 1:
                    raise Replay(visit)
                continue
            if not domain.can_transition(visit.status, target):
                if skip_invalid:
                    continue  # "this and following" leaves visits that already ran alone
                raise StateConflict(
                    "invalid-transition",
                    "Invalid transition",
                    f"Visit {visit_id} is {visit.status.value}; it cannot become {target.value}.",
                )
            updates: dict[str, Any] = {
                "status": target,
                "version": visit.version + 1,
                "history": with_history(visit, who, now, target.value, target, reason, request),
            }
            if target is VisitStatus.IN_PROGRESS:
                updates["started_at"] = now
            if target is VisitStatus.CANCELLED:
                updates["cancel_reason"] = reason
            if target is VisitStatus.COMPLETED:
                started = (
                    (
                        domain.as_copenhagen(actual.started_at)
                        if actual and actual.started_at
                        else None
                    )
                    or visit.started_at
                    or visit.starts_at
                )
                ended = domain.as_copenhagen(actual.ended_at) if actual and actual.ended_at else now
                if ended <= started:
                    raise Invalid(
                        [FieldProblem(field="body.ended_at", message="must be after the start")]
                    )
                updates["started_at"] = started.astimezone(dt.UTC)
                updates["ended_at"] = ended.astimezone(dt.UTC)
            new = visit.model_copy(update=updates)
            change.visits.append(new)
            if target is VisitStatus.CANCELLED:
                change.events.append(
                    visit_event(EventType.MOBILE_VISIT_CANCELLED, new, store.source)
                )
            elif target is VisitStatus.COMPLETED:
                change.events.append(
                    visit_event(EventType.MOBILE_VISIT_COMPLETED, new, store.source)
                )
        return change

    return decide


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


async def plan_visit(
    store: MobileStore, body: VisitIn, planner: Principal, idempotency_key: str | None
) -> Saved[Visit]:
    """Plan a visit; the same ``visit_id`` (or key) with the same plan answers the stored one."""
    now = utc_now()
    starts, ends = domain.as_copenhagen(body.starts_at), domain.as_copenhagen(body.ends_at)
    problems = domain.window_problems(starts, ends, now)
    place = await resolve_place(store, body, problems)
    if problems:
        raise Invalid(problems)
    visit = await _new_visit(store, body, place, starts, ends, planner, idempotency_key, now)
    visit_id = visit.visit_id

    def decide(current: dict[str, Visit | None], _: Series | None) -> Change:
        existing = current[visit_id]
        if existing is not None:
            if existing.plan_of() == visit.plan_of():
                raise Replay(existing)
            raise already_exists("visit")
        return Change([visit], [visit_event(EventType.MOBILE_VISIT_PLANNED, visit, store.source)])

    try:
        await commit(store, [visit_id], decide)
    except Replay as replay:
        return Saved(replay.visit, created=False)
    count_overrides([], [visit])
    return Saved(visit, created=True)


async def log_held_visit(
    store: MobileStore, body: VisitIn, planner: Principal, idempotency_key: str | None
) -> Saved[Visit]:
    """Log a visit that already took place, stored as completed (``visit.planned`` and
    ``visit.completed`` staged); the same id with the same visit answers the stored one."""
    now = utc_now()
    starts, ends = domain.as_copenhagen(body.starts_at), domain.as_copenhagen(body.ends_at)
    problems = domain.held_window_problems(starts, ends, now)
    place = await resolve_place(store, body, problems)
    if problems:
        raise Invalid(problems)
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
            raise already_exists("visit")
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
        return Saved(replay.visit, created=False)
    count_overrides([], [visit])
    return Saved(visit, created=True)


async def edit_visit(
    store: MobileStore, visit_id: str, body: VisitEdit, planner: Principal
) -> Visit:
    """Change a planned or confirmed visit, with the checks of planning."""
    visit = await visit_or_not_found(store, visit_id)
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
    return saved


async def take_step(
    store: MobileStore,
    visit_id: str,
    target: VisitStatus,
    who: Principal,
    key: str | None,
    *,
    actual: CompleteIn | None = None,
    reason: CancelReason | None = None,
) -> Visit:
    """Move one visit to ``target``; a retried request answers the visit unchanged."""
    # The key itself is the client's; only a digest of it (with the caller) is stored.
    request = derived_id("req", who.actor, key)
    decide = transition_change(
        store, [visit_id], target, who, actual=actual, reason=reason, request=request
    )
    try:
        change = await commit(store, [visit_id], decide)
    except Replay as replay:
        return replay.visit
    return change.visits[0]


# --- calendars -----------------------------------------------------------------------------


def date_range(
    start: dt.date | None, end: dt.date | None, *, default_past: int, default_future: int
) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` as Copenhagen midnights; absent ends default to so many days from
    today."""
    today = utc_now().astimezone(COPENHAGEN).date()
    first = start or today - dt.timedelta(days=default_past)
    last = end or today + dt.timedelta(days=default_future)
    if last <= first:
        raise Invalid([FieldProblem(field="query.end", message="must be after start")])
    return (
        dt.datetime.combine(first, dt.time(), COPENHAGEN),
        dt.datetime.combine(last, dt.time(), COPENHAGEN),
    )


async def calendar(
    store: MobileStore,
    kind: str,
    target: str,
    start: dt.date | None,
    end: dt.date | None,
    *,
    default_past: int,
    default_future: int,
) -> list[Visit]:
    """The visits of a staff member, place or district (``kind``) in a range of local days."""
    since, until = date_range(start, end, default_past=default_past, default_future=default_future)
    return await store.calendar(kind, target, since, until)


async def require_link_key(
    store: MobileStore, signing_key: bytes, staff_id: str, key: str | None
) -> None:
    """:class:`NotFound` unless ``key`` is the current key of the staff calendar's address:
    the same answer for a wrong, old or missing key, so the feed never confirms that a staff
    id exists."""
    generation = await store.calendar_link_generation(staff_id)
    if not key_matches(signing_key, staff_id, generation, key):
        raise NotFound("calendar at this address")
