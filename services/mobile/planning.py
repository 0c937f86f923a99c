"""The steps every planning route shares: resolving a place, checking opening hours, building
events and views, and saving visits through the store's atomic step with their problems mapped
to problem+json. The routes in ``api.py`` compose these.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any

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
from services.mobile.domain import (
    CancelReason,
    HistoryRecord,
    OverrideRecord,
    Place,
    Series,
    Visit,
    VisitStatus,
)
from services.mobile.metrics import OPENING_HOUR_OVERRIDES, PLANS_REFUSED
from services.mobile.schemas import CompleteIn, PlanFields
from services.mobile.store import Change, Contended, MobileStore, VisitConflict
from services.plumbing.auth import Principal
from services.plumbing.problems import (
    FieldProblem,
    Problem,
    coordinate_problems,
    validation_problem,
)


def utc_now() -> dt.datetime:
    """The current instant (UTC)."""
    return dt.datetime.now(dt.UTC)


def local_iso(when: dt.datetime) -> str:
    """``when`` as ISO 8601 in Copenhagen local time, with its offset."""
    return when.astimezone(COPENHAGEN).isoformat()


def not_found(what: str) -> Problem:
    """A 404 saying what was not found."""
    return Problem(404, None, "Not Found", detail=f"No {what}.")


def conflict_problem(conflict: domain.Conflict) -> Problem:
    """A 409 naming the visit a plan collides with, and why."""
    PLANS_REFUSED.labels(conflict.kind.value).inc()
    return Problem(
        409,
        "visit-conflict",
        "Visit conflict",
        detail=conflict.describe(),
        errors=[
            FieldProblem(field="conflict.visit_id", message=conflict.visit_id),
            FieldProblem(field="conflict.kind", message=conflict.kind.value),
            FieldProblem(field="conflict.resource", message=conflict.resource),
            FieldProblem(field="conflict.planned_visit_id", message=conflict.planned_visit_id),
        ],
    )


def contended() -> Problem:
    """A 503 for a change that lost the race to other writers too often."""
    return Problem(
        503,
        "contended",
        "Too many concurrent changes",
        detail="Others kept changing the same staff or kit; nothing was saved. Try again.",
        headers={"Retry-After": "1"},
    )


def derived_id(prefix: str, subject: str, key: str | None) -> str:
    """An id derived from the caller's Idempotency-Key (a retry gets the same id), or new.

    ``subject`` is the caller's pseudonymous id (``Principal.actor``), never the raw token sub.
    """
    if key is None:
        return f"{prefix}-{uuid.uuid4().hex[:16]}"
    digest = hashlib.sha256(f"{subject}\n{key}".encode()).hexdigest()
    return f"{prefix}-{digest[:16]}"


async def commit(store: MobileStore, ids: Sequence[str], decide: Any, **kw: Any) -> Change:
    """Save through ``store.commit``, with conflicts and contention as problems."""
    try:
        return await store.commit(ids, decide, **kw)
    except VisitConflict as error:
        raise conflict_problem(error.conflict) from None
    except Contended:
        raise contended() from None


# --- views ---------------------------------------------------------------------------------


def visit_view(visit: Visit, bookings: int | None = None) -> dict[str, Any]:
    """A visit as the API shows it: times in Copenhagen local time with their offset."""
    body = visit.model_dump(mode="json")
    for name in ("starts_at", "ends_at", "started_at", "ended_at"):
        value = getattr(visit, name)
        body[name] = local_iso(value) if value is not None else None
    if bookings is not None:
        body["bookings"] = bookings
    return body


def public_visit_view(visit: Visit, bookings: int | None = None) -> dict[str, Any]:
    """A visit as the public routes show it: :func:`visit_view` without any staff or actor id.

    Where and when the mobile service comes is public; who works there, who planned a visit
    and who overrode the opening hours is not, even as pseudonymous ids (issue 19, item 2).
    """
    body = visit_view(visit, bookings)
    body.pop("staff", None)
    body["history"] = [{k: v for k, v in h.items() if k != "by"} for h in body["history"]]
    if body.get("override") is not None:
        body["override"] = {k: v for k, v in body["override"].items() if k != "by"}
    return body


def public_series_view(series: Series, visits: Sequence[Visit]) -> dict[str, Any]:
    """A series as the public route shows it: no staff or actor id in it or its visits."""
    body = series_view(series, visits)
    body["revisions"] = [{k: v for k, v in r.items() if k != "by"} for r in body["revisions"]]
    body["visits"] = [public_visit_view(v) for v in sorted(visits, key=lambda v: v.starts_at)]
    return body


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
    """The opening-hours verdict of each window; refuses (422) windows outside the hours
    unless the planner overrides explicitly."""
    if place.site_id is None:
        return ["unknown"] * len(windows)
    entries = await store.entries_at(place.site_id)
    checks = [domain.opening_check(entries, start, end) for start, end in windows]
    outside = [start for (start, _), c in zip(windows, checks, strict=True) if c == "outside"]
    if outside and not override:
        PLANS_REFUSED.labels("outside_opening_hours").inc()
        days = ", ".join(sorted({local_iso(s)[:16] for s in outside})[:10])
        raise Problem(
            422,
            "outside-opening-hours",
            "Outside opening hours",
            detail=f"{place.name} is not open for the whole visit ({days}). Send "
            "override_opening_hours: true to plan it anyway; the override is recorded.",
        )
    return checks


def override_record(check: domain.OpeningCheck, who: Principal, now: dt.datetime) -> Any:
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
    one changed them since they were read (else 409)."""
    now = utc_now()
    problems: list[FieldProblem] = []
    for visit in edits:
        prefix = "body" if len(edits) == 1 else f"visits[{visit.visit_id}]"
        problems.extend(domain.window_problems(visit.starts_at, visit.ends_at, now, prefix))
    if problems:
        raise validation_problem(problems)
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
            raise Problem(
                409,
                "changed-meanwhile",
                "Changed meanwhile",
                detail=f"Series {series.series_id} changed while this edit was checked.",
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
                raise Problem(
                    409,
                    "changed-meanwhile",
                    "Changed meanwhile",
                    detail=f"Visit {visit_id} changed while this edit was checked; send it again.",
                )
        events = [visit_event(EventType.MOBILE_VISIT_PLANNED, v, store.source) for v in final]
        return Change(final, events, series=series)

    await commit(
        store, list(based_on), decide, series_id=series.series_id if series is not None else None
    )
    count_overrides(edits, final)
    return final


def require_editable(visit: Visit) -> None:
    """Refuse (409) changes to a visit that has started, ended or was cancelled."""
    if visit.status not in domain.EDITABLE:
        raise Problem(
            409,
            "invalid-transition",
            "Visit cannot change",
            detail=f"A {visit.status.value} visit cannot be edited.",
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
                raise not_found(f"visit {visit_id}")
            if request is not None and any(h.request == request for h in visit.history):
                # This very step was taken already (a client retry with the same key, or our
                # own retry after a lost EXEC reply): answer it and change nothing.
                if len(visit_ids) == 1:
                    raise Replay(visit)
                continue
            if not domain.can_transition(visit.status, target):
                if skip_invalid:
                    continue  # "this and following" leaves visits that already ran alone
                raise Problem(
                    409,
                    "invalid-transition",
                    "Invalid transition",
                    detail=f"Visit {visit_id} is {visit.status.value}; it cannot become "
                    f"{target.value}.",
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
                    raise validation_problem(
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


def series_view(series: Series, visits: Sequence[Visit]) -> dict[str, Any]:
    """A series as the API shows it: rule, skipped dates, revisions and visits."""
    body = series.model_dump(mode="json", exclude={"occurrences", "skipped"})
    body["skipped"] = [{"date": d.isoformat(), "reason": r} for d, r in series.skipped]
    body["visits"] = [visit_view(v) for v in sorted(visits, key=lambda v: v.starts_at)]
    return body


def same_series(stored: Series, new: Series) -> bool:
    """Whether ``new`` is the request that created ``stored`` (same rule, start, exceptions)."""
    fields = {"rrule", "first_starts_at", "duration_minutes", "cancelled", "moved"}
    return stored.model_dump(include=fields) == new.model_dump(include=fields) and set(
        stored.occurrences.values()
    ) == set(new.occurrences.values())


def occurrence_id(series_id: str, day: dt.date) -> str:
    """The visit id of a series occurrence: the series id and the rule date."""
    return f"{series_id[:60]}-{day:%Y%m%d}"
