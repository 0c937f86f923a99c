"""The use cases of recurring series: plan one from an RFC 5545 rule, read it, and edit or cancel
one occurrence or it and all following. Built on the shared planning steps of ``service.py``;
refusals as there (domain errors, mapped to problem+json by ``api.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from enum import StrEnum

from services.contracts import EventType
from services.contracts.geography import COPENHAGEN
from services.mobile import domain
from services.mobile.domain import (
    HistoryRecord,
    Invalid,
    NotFound,
    Series,
    Visit,
    VisitStatus,
)
from services.mobile.schemas import CancelIn, OccurrenceEdit, SeriesIn
from services.mobile.service import (
    Replay,
    Saved,
    already_exists,
    apply_edit,
    check_opening,
    commit,
    count_overrides,
    derived_id,
    override_record,
    require_editable,
    resolve_place,
    save_edits,
    transition_change,
    utc_now,
    visit_event,
)
from services.mobile.store import Change, MobileStore
from services.plumbing.auth import Principal
from services.plumbing.problems import FieldProblem


class Scope(StrEnum):
    """Which occurrences an edit of a series applies to, as calendar apps ask."""

    THIS = "this"
    FOLLOWING = "following"


def same_series(stored: Series, new: Series) -> bool:
    """Whether ``new`` is the request that created ``stored`` (same rule, start, exceptions)."""
    fields = {"rrule", "first_starts_at", "duration_minutes", "cancelled", "moved"}
    return stored.model_dump(include=fields) == new.model_dump(include=fields) and set(
        stored.occurrences.values()
    ) == set(new.occurrences.values())


def occurrence_id(series_id: str, day: dt.date) -> str:
    """The visit id of a series occurrence: the series id and the rule date."""
    return f"{series_id[:60]}-{day:%Y%m%d}"


async def series_or_not_found(store: MobileStore, series_id: str) -> Series:
    """The series, or :class:`NotFound`."""
    series = await store.series(series_id)
    if series is None:
        raise NotFound(f"series {series_id}")
    return series


async def series_with_visits(store: MobileStore, series_id: str) -> tuple[Series, list[Visit]]:
    """A series and the visits of its occurrences."""
    series = await series_or_not_found(store, series_id)
    return series, await store.visits(series.occurrences.values())


async def plan_series(
    store: MobileStore, body: SeriesIn, planner: Principal, idempotency_key: str | None
) -> Saved[tuple[Series, list[Visit]]]:
    """Plan recurring visits at the first start's Copenhagen wall-clock time (Danish public
    holidays skipped, exceptions applied), checked and saved together: one collision refuses
    the whole series. A retry of the same request answers the stored series."""
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
        raise Invalid(problems)
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
            raise already_exists("series")
        events = [visit_event(EventType.MOBILE_VISIT_PLANNED, v, store.source) for v in visits]
        return Change(visits, events, series=series)

    try:
        await commit(store, [v.visit_id for v in visits], decide, series_id=series_id)
    except Replay:
        return Saved(await series_with_visits(store, series_id), created=False)
    count_overrides([], visits)
    return Saved((series, visits), created=True)


async def _scoped(store: MobileStore, series: Series, day: dt.date, scope: Scope) -> list[Visit]:
    if day not in series.occurrences:
        raise NotFound(f"occurrence on {day.isoformat()} in series {series.series_id}")
    days = [
        d for d in sorted(series.occurrences) if d == day or (scope is Scope.FOLLOWING and d > day)
    ]
    return await store.visits(series.occurrences[d] for d in days)


async def edit_occurrences(
    store: MobileStore,
    series_id: str,
    day: dt.date,
    body: OccurrenceEdit,
    planner: Principal,
    scope: Scope,
) -> tuple[Series, list[Visit]]:
    """Edit one occurrence or it and all following (a new start time kept as Copenhagen
    wall-clock time on each visit's own date, duration, staff, kit ...); visits already under
    way or over are left as they are. Answers the series as revised, with its visits."""
    if body.moved_to is not None and scope is Scope.FOLLOWING:
        raise Invalid(
            [FieldProblem(field="body.moved_to", message="moves one occurrence; use scope=this")]
        )
    series = await series_or_not_found(store, series_id)
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
    return updated, await store.visits(updated.occurrences.values())


async def cancel_occurrences(
    store: MobileStore,
    series_id: str,
    day: dt.date,
    body: CancelIn,
    planner: Principal,
    scope: Scope,
) -> tuple[Series, list[Visit]]:
    """Cancel one occurrence or it and all following (those not yet under way); each cancelled
    visit stages VisitCancelled. Answers the series with its visits."""
    series = await series_or_not_found(store, series_id)
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
    return series, await store.visits(series.occurrences.values())
