"""The metrics service's read routes (``metrics:read``): the digital share, trend and forecast,
KVIK and mobile figures, costs, coverage and the counting-week export. Each parses, reads the
store through ``figures``, and answers; intake is in ``intake``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.contracts import (
    Channel,
    ContactMode,
    District,
)
from services.contracts.payloads.base import Code
from services.metrics import domain, figures, needs
from services.metrics.costs import cost_report
from services.metrics.deps import FIRST_DAY, LAST_DAY, Day, RuntimeDep, SettingsDep, StoreDep
from services.metrics.forecast import Outlook
from services.metrics.needs import NeedsGroup
from services.plumbing.auth import MetricsReader
from services.plumbing.exact_values import QueryInt
from services.plumbing.problems import problem_responses

router = APIRouter()

READ_PROBLEMS = problem_responses(401, 403, 422)


PeriodQuery = Annotated[
    domain.Period, Query(description="The day, ISO week (Monday-Sunday) or month of `date`.")
]
DateQuery = Annotated[
    Day, Query(description=f"A day in the period, YYYY-MM-DD, from {FIRST_DAY} to {LAST_DAY}.")
]
DistrictQuery = Annotated[
    District | None, Query(description="A district; all districts when left out.")
]
ServiceQuery = Annotated[
    Code | None, Query(description="A catalogue service code; all services when left out.")
]


# -- schemas -----------------------------------------------------------------------------------


class ModeCounts(BaseModel):
    """Contacts of one channel by mode."""

    self_service: int
    assisted: int


class GroupShareOut(BaseModel):
    """The contacts of one needs group (general or special) and their digital share."""

    self_service: int
    assisted: int
    total: int
    share: float | None = Field(description="self_service / total; null when there are none.")
    channels: dict[Channel, ModeCounts]


class NeedsSplitOut(BaseModel):
    """The contacts split by the needs group of their service (registry catalogue);
    general + special == the overall figures, always (docs/metrics.md)."""

    general: GroupShareOut = Field(
        description="General-needs enquiries (and services the catalogue does not know): what "
        "the target is about."
    )
    special: GroupShareOut = Field(
        description="Special-needs enquiries: citizens meant to get personal contact first."
    )


class ShareOut(BaseModel):
    """The digital share of a selection and the counts behind it: the headline (general-needs)
    share, the overall figures (all contacts) and the split by needs group."""

    district: District | None = Field(description="The district; null means all districts.")
    self_service: int = Field(description="Self-service contacts, all needs groups.")
    assisted: int = Field(description="Assisted contacts, all needs groups.")
    total: int = Field(description="All contacts, general and special needs.")
    share: float | None = Field(
        description="The overall share: self_service / total over all contacts; null when "
        "there are none. The headline is headline_share."
    )
    channels: dict[Channel, ModeCounts]
    headline_share: float | None = Field(
        description="The share management steers by and the target is about: general-needs "
        "self-service / general-needs contacts (= needs.general.share)."
    )
    needs: NeedsSplitOut


class ShareReport(ShareOut):
    """The share for one period, district (or all) and service (or all)."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    service: str | None


class DistrictShares(BaseModel):
    """The share of every district for one period and service (or all)."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    service: str | None
    districts: list[ShareOut]


class KvikFunnelOut(BaseModel):
    """KVIK completion, abandonment and help rates for a period, district and service."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    district: District | None
    service: str | None
    completed: int
    self_service: int
    assisted: int
    abandoned: int
    completion_rate: float | None = Field(description="completed / (completed + abandoned).")
    abandonment_rate: float | None = Field(description="abandoned / (completed + abandoned).")
    help_rate: float | None = Field(description="assisted / completed: sessions needing staff.")
    help_requested: int = Field(description="Requests for staff help by video or phone.")
    help_answered: int
    mean_time_to_help_seconds: float | None = Field(
        description="Mean wait from a help request to staff answering it."
    )


class WeekGroupOut(BaseModel):
    """One needs group's contacts in a week."""

    self_service: int
    assisted: int
    share: float | None


class WeekNeedsOut(BaseModel):
    """A week's contacts by needs group (general + special == the week's overall figures)."""

    general: WeekGroupOut
    special: WeekGroupOut


class WeekOut(BaseModel):
    """One ISO week of a district's trend: overall figures, the headline (general-needs) share
    and the split by needs group."""

    week: str = Field(description="ISO week, e.g. 2024-W03.")
    monday: dt.date
    self_service: int = Field(description="Self-service contacts, all needs groups.")
    assisted: int = Field(description="Assisted contacts, all needs groups.")
    share: float | None = Field(description="The overall share of the week.")
    headline_share: float | None = Field(
        description="The general-needs share of the week (= needs.general.share)."
    )
    needs: WeekNeedsOut


class DistrictTrend(BaseModel):
    """A district's weekly share, oldest week first."""

    district: District
    weeks: list[WeekOut]


class TrendOut(BaseModel):
    """Weekly shares of every district up to the week of ``date``."""

    date: dt.date
    districts: list[DistrictTrend]


class ForecastOut(BaseModel):
    """Whether a district's general-needs share reaches the target by the deadline, from a
    Theil-Sen fit over its weekly general-needs shares."""

    district: District
    outlook: Outlook = Field(
        description="reached (at or above the target now); on_track (the fit crosses in a week "
        "starting on or before the deadline); behind (it crosses after the deadline, by "
        "weeks_behind weeks); not_within_horizon (falling, flat, or crossing after the "
        "horizon); insufficient_data (fewer than 4 weeks with contacts)."
    )
    weeks_behind: int | None = Field(
        description="Weeks from the deadline to the crossing (0 when reached or on track; null "
        "when not within the horizon or without data)."
    )
    weeks_used: int
    slope_per_week: float | None = Field(description="Change of the share per week.")
    latest_fitted: float | None = Field(description="The fit's share in the last full week.")
    crossing: dt.date | None = Field(description="Monday of the week the fit reaches the target.")
    crossing_earliest: dt.date | None = Field(description="Early end of the 90 % band.")
    crossing_latest: dt.date | None = Field(
        description="Late end of the 90 % band; null when the band's shallow slope never gets "
        "there within the horizon."
    )


class ForecastsOut(BaseModel):
    """Every district's forecast against the configured target and deadline; the method is in
    docs/metrics.md."""

    date: dt.date
    basis: NeedsGroup = Field(
        description="The weekly shares fitted: those of the general-needs contacts."
    )
    target: float = Field(description="The target share (KANALHUB_METRICS_TARGET_SHARE).")
    target_deadline: dt.date = Field(
        description="The day to reach it by (KANALHUB_METRICS_TARGET_DEADLINE)."
    )
    horizon_weeks: int
    districts: list[ForecastOut]


class ChannelCostOut(BaseModel):
    """One channel's contacts and cost."""

    channel: Channel
    contacts: int
    unit_cost_dkk: float
    cost_dkk: float


class KpisOut(BaseModel):
    """GDS-style key figures for a period and district (or all)."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    district: District | None
    digital_share: float | None = Field(description="The overall share (all contacts).")
    headline_share: float | None = Field(
        description="The general-needs share: what the target is about."
    )
    special_needs_share: float | None = Field(description="The special-needs share.")
    target: float = Field(description="The target share (KANALHUB_METRICS_TARGET_SHARE).")
    target_deadline: dt.date = Field(description="The day to reach it by.")
    kvik_completion_rate: float | None
    channels: list[ChannelCostOut]
    total_cost_dkk: float
    cost_per_contact_dkk: float | None
    contacts_to_move_for_target: int = Field(
        description="Assisted general-needs contacts that would have to be self-service for "
        "the general-needs share to meet the target."
    )
    saving_at_target_dkk: float = Field(
        description="What the period would have cost less with those contacts moved to "
        "digital self-service (see docs/metrics.md)."
    )


class MobileOut(BaseModel):
    """Mobile citizen service for a period and district (or all)."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    district: District | None
    visits_completed: int
    contacts: int
    onboarded_to_digital: int
    staffed_hours: float
    contacts_per_staffed_hour: float | None
    onboarding_rate: float | None = Field(description="onboarded / contacts.")


class CoverageOut(BaseModel):
    """A district's open citizen-service entries next to its share."""

    district: District
    covered: bool
    entries: list[str] = Field(description="Open citizen-service entries (registry ids).")
    share: float | None = Field(description="Digital share over the last window_days days.")


class CoverageReport(BaseModel):
    """Coverage of every district."""

    first_day: dt.date
    last_day: dt.date
    districts: list[CoverageOut]
    uncovered: list[District]


# -- routes ------------------------------------------------------------------------------------


def _channels_out(share: domain.Share) -> dict[Channel, ModeCounts]:
    return {
        channel: ModeCounts(
            self_service=modes[ContactMode.SELF_SERVICE], assisted=modes[ContactMode.ASSISTED]
        )
        for channel, modes in share.channels.items()
    }


def _group_out(share: domain.Share) -> GroupShareOut:
    return GroupShareOut(
        self_service=share.self_service,
        assisted=share.assisted,
        total=share.total,
        share=share.share,
        channels=_channels_out(share),
    )


def _share_out(district: District | None, split: needs.NeedsShares) -> ShareOut:
    share = split.overall
    return ShareOut(
        district=district,
        self_service=share.self_service,
        assisted=share.assisted,
        total=share.total,
        share=share.share,
        channels=_channels_out(share),
        headline_share=split.headline.share,
        needs=NeedsSplitOut(general=_group_out(split.general), special=_group_out(split.special)),
    )


def _selected(
    shares: dict[District, needs.NeedsShares], district: District | None
) -> needs.NeedsShares:
    return shares[district] if district is not None else needs.total_of(shares)


def _week_group(share: domain.Share) -> WeekGroupOut:
    return WeekGroupOut(self_service=share.self_service, assisted=share.assisted, share=share.share)


@router.get(
    "/share",
    response_model=ShareReport,
    responses=READ_PROBLEMS,
    summary="Digital share for a period, district (or all) and service (or all)",
)
async def get_share(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: PeriodQuery,
    date: DateQuery,
    district: DistrictQuery = None,
    service: ServiceQuery = None,
) -> ShareReport:
    """Self-service contacts / all contacts, with the counts per channel and mode behind it:
    the headline (general-needs) share, the overall share and the split by needs group."""
    first, last = domain.period_days(period, date)
    shares = await figures.needs_shares_in(store, runtime.redis, first, last, service)
    return ShareReport(
        **_share_out(district, _selected(shares, district)).model_dump(),
        period=period,
        first_day=first,
        last_day=last,
        service=service,
    )


@router.get(
    "/share/districts",
    response_model=DistrictShares,
    responses=READ_PROBLEMS,
    summary="Digital share of every district for a period and service (or all)",
)
async def get_district_shares(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: PeriodQuery,
    date: DateQuery,
    service: ServiceQuery = None,
) -> DistrictShares:
    """One share per district, districts without contacts included (share null); each with
    its headline (general-needs) share and the split by needs group."""
    first, last = domain.period_days(period, date)
    shares = await figures.needs_shares_in(store, runtime.redis, first, last, service)
    return DistrictShares(
        period=period,
        first_day=first,
        last_day=last,
        service=service,
        districts=[_share_out(district, share) for district, share in shares.items()],
    )


@router.get(
    "/trend",
    response_model=TrendOut,
    responses=READ_PROBLEMS,
    summary="Weekly digital share of every district",
)
async def get_trend(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    date: Annotated[
        Day | None, Query(description="A day in the last week; today when left out.")
    ] = None,
    weeks: Annotated[QueryInt, Query(ge=1, le=260, description="How many ISO weeks.")] = 12,
) -> TrendOut:
    """The share of each ISO week up to the week of ``date``, per district (all services):
    overall, headline (general-needs) and by needs group."""
    day = date or domain.today_in_copenhagen()
    weekly = await figures.weekly_shares(store, runtime.redis, day, weeks)
    return TrendOut(
        date=day,
        districts=[
            DistrictTrend(
                district=district,
                weeks=[
                    WeekOut(
                        week=domain.period_name(domain.Period.WEEK, w.monday),
                        monday=w.monday,
                        self_service=w.share.self_service,
                        assisted=w.share.assisted,
                        share=w.share.share,
                        headline_share=w.needs.headline.share,
                        needs=WeekNeedsOut(
                            general=_week_group(w.needs.general),
                            special=_week_group(w.needs.special),
                        ),
                    )
                    for w in series
                ],
            )
            for district, series in weekly.items()
        ],
    )


@router.get(
    "/forecast",
    response_model=ForecastsOut,
    responses=READ_PROBLEMS,
    summary="Whether each district's general-needs share reaches the target by the deadline",
)
async def get_forecast(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    date: Annotated[
        Day | None, Query(description="Forecast as of this day; today when left out.")
    ] = None,
) -> ForecastsOut:
    """A Theil-Sen fit over the weekly general-needs shares of the ``forecast_weeks`` full
    weeks before the week of ``date``, with a 90 % band, against the configured target and
    deadline: reached, on track, behind by N weeks, not within the horizon, or too few weeks."""
    day = date or domain.today_in_copenhagen()
    results = await figures.forecasts(store, runtime.redis, day, settings)
    return ForecastsOut(
        date=day,
        basis=needs.HEADLINE_GROUP,
        target=settings.target_share,
        target_deadline=settings.target_deadline,
        horizon_weeks=settings.forecast_horizon_weeks,
        districts=[
            ForecastOut(
                district=district,
                outlook=f.outlook,
                weeks_behind=f.weeks_behind,
                weeks_used=f.weeks_used,
                slope_per_week=f.slope_per_week,
                latest_fitted=f.latest_fitted,
                crossing=f.crossing,
                crossing_earliest=f.crossing_earliest,
                crossing_latest=f.crossing_latest,
            )
            for district, f in results.items()
        ],
    )


@router.get(
    "/kvik/funnel",
    response_model=KvikFunnelOut,
    responses=READ_PROBLEMS,
    summary="KVIK completion, abandonment and help rates, and time to help",
)
async def get_kvik_funnel(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: PeriodQuery,
    date: DateQuery,
    district: DistrictQuery = None,
    service: ServiceQuery = None,
) -> KvikFunnelOut:
    """Sessions completed (self-service or with staff help) and abandoned; referred sessions
    are not in these figures. Help figures are over all services."""
    first, last = domain.period_days(period, date)
    funnel = await figures.kvik_funnel(store, runtime.redis, first, last, district, service)
    help_figures = await figures.kvik_help(store, runtime.redis, first, last, district)
    return KvikFunnelOut(
        period=period,
        first_day=first,
        last_day=last,
        district=district,
        service=service,
        completed=funnel.completed,
        self_service=funnel.self_service,
        assisted=funnel.assisted,
        abandoned=funnel.abandoned,
        completion_rate=funnel.completion_rate,
        abandonment_rate=funnel.abandonment_rate,
        help_rate=funnel.help_rate,
        help_requested=help_figures.requested,
        help_answered=help_figures.answered,
        mean_time_to_help_seconds=help_figures.mean_wait_seconds,
    )


@router.get(
    "/mobile",
    response_model=MobileOut,
    responses=READ_PROBLEMS,
    summary="Mobile citizen service: visits, contacts, onboardings, utilisation",
)
async def get_mobile(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: PeriodQuery,
    date: DateQuery,
    district: DistrictQuery = None,
) -> MobileOut:
    """Completed visits, their staff hours, the contacts and digital onboardings recorded."""
    first, last = domain.period_days(period, date)
    mobile = await figures.mobile(store, runtime.redis, first, last, district)
    return MobileOut(
        period=period,
        first_day=first,
        last_day=last,
        district=district,
        visits_completed=mobile.visits_completed,
        contacts=mobile.contacts,
        onboarded_to_digital=mobile.onboarded,
        staffed_hours=round(mobile.staffed_hours, 3),
        contacts_per_staffed_hour=mobile.contacts_per_staffed_hour,
        onboarding_rate=mobile.onboarding_rate,
    )


@router.get(
    "/kpis",
    response_model=KpisOut,
    responses=READ_PROBLEMS,
    summary="Key figures: shares, completion rate, cost per contact, saving at the target",
)
async def get_kpis(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    period: PeriodQuery,
    date: DateQuery,
    district: DistrictQuery = None,
) -> KpisOut:
    """After the UK GDS performance platform: the headline (general-needs), overall and
    special-needs shares, KVIK completion rate, cost per contact by channel (unit costs from
    configuration) and the saving if the general-needs share met the target."""
    first, last = domain.period_days(period, date)
    split = _selected(await figures.needs_shares_in(store, runtime.redis, first, last), district)
    share = split.overall
    funnel = await figures.kvik_funnel(store, runtime.redis, first, last, district)
    costs = cost_report(
        share,
        {c: settings.unit_cost(c) for c in Channel},
        settings.target_share,
        headline=split.headline,
    )
    return KpisOut(
        period=period,
        first_day=first,
        last_day=last,
        district=district,
        digital_share=share.share,
        headline_share=split.headline.share,
        special_needs_share=split.special.share,
        target=settings.target_share,
        target_deadline=settings.target_deadline,
        kvik_completion_rate=funnel.completion_rate,
        channels=[
            ChannelCostOut(
                channel=c.channel, contacts=c.contacts, unit_cost_dkk=c.unit_cost, cost_dkk=c.cost
            )
            for c in costs.channels
        ],
        total_cost_dkk=costs.total_cost,
        cost_per_contact_dkk=costs.cost_per_contact,
        contacts_to_move_for_target=costs.contacts_to_move,
        saving_at_target_dkk=round(costs.saving_at_target, 2),
    )


@router.get(
    "/coverage",
    response_model=CoverageReport,
    responses=READ_PROBLEMS,
    summary="Districts with and without an open citizen-service entry, next to their share",
)
async def get_coverage(
    _reader: MetricsReader, store: StoreDep, runtime: RuntimeDep, settings: SettingsDep
) -> CoverageReport:
    """From the registry copy: open citizen-service centres, KVIK points and mobile stops."""
    last = domain.today_in_copenhagen()
    first = last - dt.timedelta(days=settings.share_window_days - 1)
    covered = await figures.coverage(store, runtime.redis)
    shares = await figures.shares_in(store, runtime.redis, first, last)
    return CoverageReport(
        first_day=first,
        last_day=last,
        districts=[
            CoverageOut(
                district=district,
                covered=bool(entries),
                entries=entries,
                share=shares[district].share,
            )
            for district, entries in covered.items()
        ],
        uncovered=[district for district, entries in covered.items() if not entries],
    )


EXPORT_COLUMNS = ("week", "channel", "service", "contacts", "self_service", "assisted")


@router.get(
    "/export/counting-weeks.csv",
    response_class=Response,
    responses={
        **READ_PROBLEMS,
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"},
    },
    summary="Counting-week export: contacts per channel per service for chosen ISO weeks",
)
async def get_counting_weeks(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    week: Annotated[
        list[Day],
        Query(min_length=1, max_length=53, description="A day in each counting week."),
    ],
    district: DistrictQuery = None,
) -> Response:
    """One line per week, channel and service with contacts, as Danish municipalities count
    channel statistics in "tælleuger" (counting weeks); all districts unless one is given."""
    weeks = await figures.counting_weeks(store, runtime.redis, week, district)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for monday, lines in weeks:
        name = domain.period_name(domain.Period.WEEK, monday)
        for line in lines:
            writer.writerow(
                [name, line.channel, line.service, line.contacts, line.self_service, line.assisted]
            )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="counting-weeks.csv"'},
    )
