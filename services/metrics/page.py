"""The built-in dashboard page at ``/``: the figures of the embedded hub in a browser, without
Grafana. Server-rendered (a Jinja template, charts as inline SVG drawn here), no JavaScript,
refreshing itself every 30 seconds; every chart's numbers are also in a table. Danish by
default, English with ``?lang=en``.

It shows aggregate figures only (no personal data exists in the hub). Who may see it is
configuration (``KANALHUB_METRICS_PUBLIC_PAGE``: open, protected or off; ``page_access.py`` and
docs/security.md, "Public surfaces"); an open page withholds small counts (``small_counts.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from redis.asyncio import Redis

from services.contracts import Channel, ContactMode, District
from services.contracts.geography import COPENHAGEN
from services.metrics import desk_figures, domain, figures, needs
from services.metrics.forecast import Forecast, Outlook
from services.metrics.page_access import PageAllowed
from services.metrics.place_usage import EntryUsage, UsageFilter
from services.metrics.settings import MetricsSettings
from services.metrics.small_counts import SmallCounts
from services.metrics.store import MetricsStore
from services.metrics.usage_figures import entries_between, site_names

router = APIRouter(include_in_schema=False)

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
CHANNEL_COLOURS: dict[Channel, str] = {
    Channel.DIGITAL: "#0072B2",
    Channel.PHONE: "#E69F00",
    Channel.COUNTER: "#009E73",
    Channel.KVIK: "#CC79A7",
    Channel.MOBILE: "#56B4E9",
}

LABELS: dict[str, dict[str, str]] = {
    "da": {
        "title": "Kanalskift - digital selvbetjening",
        "lead": "Andel af henvendelser om almene behov klaret ved digital selvbetjening.",
        "updated": "Opdateret",
        "window": "Seneste {days} dage",
        "share_by_district": "Digital andel, almene behov, pr. bydel",
        "district": "Bydel",
        "share": "Digital andel",
        "self_service": "Selvbetjening",
        "contacts": "Henvendelser",
        "forecast": "Prognose mod målet",
        "trend": "Udvikling, almene behov, alle bydele, uge for uge",
        "headline": "Almene behov",
        "headline_lead": "Målet gælder henvendelser om almene behov; borgere med særlige behov "
        "skal først have personlig kontakt.",
        "overall": "Alle henvendelser",
        "special": "Særlige behov",
        "target_by": "Mål {share} senest {deadline}",
        "general_contacts": "Henvendelser, almene behov",
        "week": "Uge",
        "channel_mix": "Kanalfordeling",
        "channel": "Kanal",
        "assisted": "Betjent",
        "kvik_today": "KVIK i dag",
        "completed": "Gennemførte sessioner",
        "completion_rate": "Gennemførelsesrate",
        "help_rate": "Andel med hjælp",
        "time_to_help": "Gns. ventetid på hjælp",
        "kiosks_online": "Kiosker online",
        "target": "Mål {share}",
        "no_data": "ingen data",
        "reached": "nået",
        "on_track": "på vej, ca. {date}",
        "behind": "{weeks} uger bagud (ca. {date})",
        "behind_one": "1 uge bagud (ca. {date})",
        "not_within_horizon": "ikke inden for {weeks} uger",
        "insufficient_data": "for få uger",
        "switch": "English",
        "digital": "Digital",
        "phone": "Telefon",
        "counter": "Skranke",
        "kvik": "KVIK",
        "mobile": "Mobil",
        "all": "Alle bydele",
        "desk": "Ventetid ved skranken",
        "desk_lead": "Borgerservicecentrenes køsystemer: ventetid (billet til kald) og "
        "betjeningstid (kald til slut)",
        "centre": "Center",
        "served": "Betjent",
        "no_shows": "Udeblevne",
        "wait_p50": "Ventetid, median",
        "wait_p90": "Ventetid, 90 %",
        "service_p50": "Betjening, median",
        "no_desk": "Ingen billetter fra køsystemerne i perioden.",
        "minutes": "{value} min",
        "usage": "Brug af indgange",
        "usage_lead": "Henvendelser pr. indgang (KVIK, skranke, mobil), de mest brugte først",
        "entry": "Indgang",
        "site": "Sted",
        "open_hours": "Åbningstimer",
        "per_open_hour": "Pr. åbningstime",
        "total": "I alt",
        "no_entries": "Ingen indgange kendt endnu.",
        "more_entries": "og {count} indgange mere (GET /usage/entries).",
    },
    "en": {
        "title": "Channel shift - digital self-service",
        "lead": "Share of general-needs enquiries handled by digital self-service.",
        "updated": "Updated",
        "window": "Last {days} days",
        "share_by_district": "Digital share of general needs by district",
        "district": "District",
        "share": "Digital share",
        "self_service": "Self-service",
        "contacts": "Contacts",
        "forecast": "Outlook for the target",
        "trend": "Trend, general needs, all districts, week by week",
        "headline": "General needs",
        "headline_lead": "The target is about general-needs enquiries; citizens with special "
        "needs are meant to get personal contact first.",
        "overall": "All contacts",
        "special": "Special needs",
        "target_by": "Target {share} by {deadline}",
        "general_contacts": "General-needs contacts",
        "week": "Week",
        "channel_mix": "Channel mix",
        "channel": "Channel",
        "assisted": "Assisted",
        "kvik_today": "KVIK today",
        "completed": "Sessions completed",
        "completion_rate": "Completion rate",
        "help_rate": "Needed help",
        "time_to_help": "Mean time to help",
        "kiosks_online": "Kiosks online",
        "target": "Target {share}",
        "no_data": "no data",
        "reached": "reached",
        "on_track": "on track, about {date}",
        "behind": "behind by {weeks} weeks (about {date})",
        "behind_one": "behind by 1 week (about {date})",
        "not_within_horizon": "not within {weeks} weeks",
        "insufficient_data": "too few weeks",
        "switch": "Dansk",
        "digital": "Digital",
        "phone": "Phone",
        "counter": "Counter",
        "kvik": "KVIK",
        "mobile": "Mobile",
        "all": "All districts",
        "desk": "Waiting at the desks",
        "desk_lead": "The citizen-service centres' queue systems: waiting (ticket to call) and "
        "service time (call to end)",
        "centre": "Centre",
        "served": "Served",
        "no_shows": "No-shows",
        "wait_p50": "Wait, median",
        "wait_p90": "Wait, 90 %",
        "service_p50": "Service, median",
        "no_desk": "No tickets from the queue systems in the period.",
        "minutes": "{value} min",
        "usage": "Usage of entry points",
        "usage_lead": "Contacts per entry point (KVIK, counter, mobile), the most used first",
        "entry": "Entry point",
        "site": "Site",
        "open_hours": "Open hours",
        "per_open_hour": "Per open hour",
        "total": "Total",
        "no_entries": "No entry points known yet.",
        "more_entries": "and {count} more entry points (GET /usage/entries).",
    },
}


@dataclass(frozen=True)
class DistrictRow:
    """One district's line on the page: the headline (general-needs) figures, the overall and
    special-needs shares beside them, and the outlook against the target and deadline."""

    district: District
    name: str
    share: float | None
    """The overall share (all contacts)."""
    self_service: int
    total: int
    outlook: str
    headline: float | None = None
    """The general-needs share."""
    special: float | None = None
    """The special-needs share."""
    general_total: int = 0
    outlook_state: str = ""
    """The forecast's outlook value (``on_track``, ``behind`` ...)."""
    weeks_behind: int | None = None


@dataclass(frozen=True)
class WeekPoint:
    """One week of the trend chart."""

    week: str
    share: float | None
    total: int


@dataclass(frozen=True)
class ChannelRow:
    """One channel of the mix."""

    channel: Channel
    label: str
    colour: str
    self_service: int
    assisted: int

    @property
    def total(self) -> int:
        """All contacts of the channel."""
        return self.self_service + self.assisted


USAGE_ROWS = 20
"""Entry points the page lists (the most used); the API lists them all."""


@dataclass(frozen=True)
class UsageRow:
    """One entry point's line in the usage table."""

    entry_id: str
    name: str
    site: str
    kvik: int
    counter: int
    mobile: int
    total: int
    open_hours: float | None
    per_open_hour: float | None


async def usage_rows(
    store: MetricsStore, redis: Redis, first: dt.date, last: dt.date
) -> tuple[list[UsageRow], int]:
    """The most used entry points from ``first`` to ``last`` (the figures of
    ``GET /usage/entries``), and how many more there are."""
    usage = await entries_between(store, redis, first, last, UsageFilter())
    sites = await site_names(store, redis)
    ranked = sorted(usage.values(), key=lambda place: (-place.tally.total, place.entry_id))

    def channel(place: EntryUsage, which: Channel) -> int:
        return sum(place.tally.channels[which].values())

    rows = [
        UsageRow(
            entry_id=place.entry_id,
            name=place.entry.name if place.entry is not None else place.entry_id,
            site=sites.get(place.site_id, place.site_id) if place.site_id else "",
            kvik=channel(place, Channel.KVIK),
            counter=channel(place, Channel.COUNTER),
            mobile=channel(place, Channel.MOBILE),
            total=place.tally.total,
            open_hours=place.open_hours,
            per_open_hour=place.per_open_hour,
        )
        for place in ranked[:USAGE_ROWS]
    ]
    return rows, max(0, len(ranked) - USAGE_ROWS)


@dataclass(frozen=True)
class DeskRow:
    """One citizen-service centre's line in the desk table (the total line of
    ``GET /desk/times`` for the page's window)."""

    entry_id: str
    name: str
    served: int
    no_shows: int
    wait_p50: float | None
    wait_p90: float | None
    service_p50: float | None


async def desk_rows(
    store: MetricsStore, redis: Redis, first: dt.date, last: dt.date
) -> list[DeskRow]:
    """Every centre with tickets from ``first`` to ``last``: the same figures, from the same
    functions, as ``GET /desk/times``."""
    return [
        DeskRow(
            entry_id=centre.entry_id,
            name=centre.name,
            served=centre.total.served,
            no_shows=centre.total.no_shows,
            wait_p50=centre.total.waiting.percentile(0.5),
            wait_p90=centre.total.waiting.percentile(0.9),
            service_p50=centre.total.service_time.percentile(0.5),
        )
        for centre in await desk_figures.centres(store, redis, first, last)
    ]


def _outlook(forecast: Forecast, labels: dict[str, str], horizon_weeks: int) -> str:
    crossing = forecast.crossing.isoformat() if forecast.crossing is not None else ""
    if forecast.outlook is Outlook.ON_TRACK:
        return labels["on_track"].format(date=crossing)
    if forecast.outlook is Outlook.BEHIND:
        key = "behind_one" if forecast.weeks_behind == 1 else "behind"
        return labels[key].format(weeks=forecast.weeks_behind, date=crossing)
    if forecast.outlook is Outlook.NOT_WITHIN_HORIZON:
        return labels["not_within_horizon"].format(weeks=horizon_weeks)
    return labels[forecast.outlook.value]


def _percent(share: float, lang: str) -> str:
    """``80 %`` (whole points), or ``82.5 %`` when the target is not a whole point."""
    text = f"{share * 100:.1f}".removesuffix(".0")
    return f"{text.replace('.', ',') if lang == 'da' else text} %"


async def render_page(
    store: MetricsStore, redis: Redis, settings: MetricsSettings, today: dt.date, lang: str
) -> str:
    """The page's HTML for ``today`` in ``lang`` (``da`` or ``en``)."""
    labels = LABELS[lang]
    small = SmallCounts(settings.page_min_count)
    first = today - dt.timedelta(days=settings.share_window_days - 1)
    special = await figures.special_needs(store, redis)
    shares = await figures.needs_shares_in(store, redis, first, today, special=special)
    forecasts = await figures.forecasts(store, redis, today, settings, special)
    districts = [
        DistrictRow(
            district,
            district.display_name,
            small.share(split.overall.share, split.overall.total),
            split.overall.self_service,
            split.overall.total,
            _outlook(forecasts[district], labels, settings.forecast_horizon_weeks),
            headline=small.share(split.headline.share, split.headline.total),
            special=small.share(split.special.share, split.special.total),
            general_total=split.headline.total,
            outlook_state=forecasts[district].outlook.value,
            weeks_behind=forecasts[district].weeks_behind,
        )
        for district, split in shares.items()
    ]
    split_total = needs.total_of(shares)
    overall = split_total.overall
    weekly = await figures.weekly_shares(store, redis, today, 12, special)
    trend = []
    for index, monday in enumerate(w.monday for w in weekly[District.VALBY]):
        # the headline's trend: general-needs contacts of all districts, week by week
        week_total = domain.Share()
        for series in weekly.values():
            week_total.merge(series[index].needs.headline)
        trend.append(
            WeekPoint(
                domain.period_name(domain.Period.WEEK, monday),
                small.share(week_total.share, week_total.total),
                week_total.total,
            )
        )
    target = settings.target_share
    target_text = _percent(target, lang)
    channels = [
        ChannelRow(
            channel,
            labels[channel.value],
            CHANNEL_COLOURS[channel],
            overall.channels[channel][ContactMode.SELF_SERVICE],
            overall.channels[channel][ContactMode.ASSISTED],
        )
        for channel in Channel
    ]
    funnel = await figures.kvik_funnel(store, redis, today, today)
    help_today = await figures.kvik_help(store, redis, today, today)
    kiosks = await figures.kiosks(store, redis)
    usage, usage_more = await usage_rows(store, redis, first, today)
    desk = await desk_rows(store, redis, first, today)
    return _TEMPLATES.get_template("dashboard.html").render(
        lang=lang,
        other_lang="en" if lang == "da" else "da",
        t=labels,
        today=today,
        updated=dt.datetime.now(COPENHAGEN).strftime("%Y-%m-%d %H:%M"),
        window=labels["window"].format(days=settings.share_window_days),
        target=target,
        target_text=labels["target"].format(share=target_text),
        target_percent=target_text,
        target_by=labels["target_by"].format(
            share=target_text, deadline=settings.target_deadline.isoformat()
        ),
        deadline=settings.target_deadline,
        split=split_total,
        districts=districts,
        overall=overall,
        trend=trend,
        trend_points=_polyline(trend),
        channels=channels,
        channel_total=max(1, sum(c.total for c in channels)),
        funnel=funnel,
        mean_wait=None if small.hides(help_today.answered) else help_today.mean_wait_seconds,
        kiosks_online=kiosks.online,
        kiosks_known=kiosks.known,
        usage=usage,
        usage_more=usage_more,
        desk=desk,
        small=small,
    )


def _polyline(points: list[WeekPoint]) -> list[tuple[float, float]]:
    """SVG coordinates of the trend in a 600 x 200 box (share 0..1 upwards); weeks without
    contacts are left out."""
    step = 600 / max(1, len(points) - 1)
    return [
        (round(index * step, 1), round(200 - p.share * 200, 1))
        for index, p in enumerate(points)
        if p.share is not None
    ]


@router.get("/", response_class=HTMLResponse)
async def dashboard(
    request: Request, _allowed: PageAllowed, lang: Annotated[Literal["da", "en"], Query()] = "da"
) -> HTMLResponse:
    """The dashboard page: open, protected (``metrics:read``) or off, by configuration."""
    settings: MetricsSettings = request.app.state.settings
    html = await render_page(
        request.app.state.metrics_store,
        request.app.state.runtime.redis,
        settings,
        domain.today_in_copenhagen(),
        lang,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
