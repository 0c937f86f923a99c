"""The built-in dashboard page at ``/``: the figures of the embedded hub in a browser, without
Grafana. Server-rendered (a Jinja template, charts as inline SVG drawn here), no JavaScript,
refreshing itself every 30 seconds; every chart's numbers are also in a table. Danish by
default, English with ``?lang=en``.

It shows aggregate figures only (no personal data exists in the hub); operators who do not
want it public switch it off with ``KANALHUB_METRICS_DASHBOARD_PAGE=false``.
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
from services.metrics import domain, figures
from services.metrics.forecast import TARGET, Forecast, Outlook
from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore

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
        "lead": "Andel af borgerhenvendelser klaret ved digital selvbetjening, mål 80 %.",
        "updated": "Opdateret",
        "window": "Seneste {days} dage",
        "share_by_district": "Digital andel pr. bydel",
        "district": "Bydel",
        "share": "Digital andel",
        "self_service": "Selvbetjening",
        "contacts": "Henvendelser",
        "forecast": "Prognose for 80 %",
        "trend": "Udvikling, alle bydele, uge for uge",
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
        "target": "Mål 80 %",
        "no_data": "ingen data",
        "reached": "nået",
        "on_track": "ca. {date}",
        "not_on_track": "ikke på vej",
        "insufficient_data": "for få uger",
        "switch": "English",
        "digital": "Digital",
        "phone": "Telefon",
        "counter": "Skranke",
        "kvik": "KVIK",
        "mobile": "Mobil",
        "all": "Alle bydele",
    },
    "en": {
        "title": "Channel shift - digital self-service",
        "lead": "Share of citizen contacts handled by digital self-service; the target is 80 %.",
        "updated": "Updated",
        "window": "Last {days} days",
        "share_by_district": "Digital share by district",
        "district": "District",
        "share": "Digital share",
        "self_service": "Self-service",
        "contacts": "Contacts",
        "forecast": "Forecast for 80 %",
        "trend": "Trend, all districts, week by week",
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
        "target": "Target 80 %",
        "no_data": "no data",
        "reached": "reached",
        "on_track": "about {date}",
        "not_on_track": "not on track",
        "insufficient_data": "too few weeks",
        "switch": "Dansk",
        "digital": "Digital",
        "phone": "Phone",
        "counter": "Counter",
        "kvik": "KVIK",
        "mobile": "Mobile",
        "all": "All districts",
    },
}


@dataclass(frozen=True)
class DistrictRow:
    """One district's line on the page."""

    district: District
    name: str
    share: float | None
    self_service: int
    total: int
    outlook: str


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


def _outlook(forecast: Forecast, labels: dict[str, str]) -> str:
    if forecast.outlook is Outlook.ON_TRACK and forecast.crossing is not None:
        return labels["on_track"].format(date=forecast.crossing.isoformat())
    return labels[forecast.outlook.value]


async def render_page(
    store: MetricsStore, redis: Redis, settings: MetricsSettings, today: dt.date, lang: str
) -> str:
    """The page's HTML for ``today`` in ``lang`` (``da`` or ``en``)."""
    labels = LABELS[lang]
    first = today - dt.timedelta(days=settings.share_window_days - 1)
    shares = await figures.shares_in(store, redis, first, today)
    forecasts = await figures.forecasts(
        store, redis, today, settings.forecast_weeks, settings.forecast_horizon_weeks
    )
    districts = [
        DistrictRow(
            district,
            district.display_name,
            share.share,
            share.self_service,
            share.total,
            _outlook(forecasts[district], labels),
        )
        for district, share in shares.items()
    ]
    overall = figures.total_of(shares)
    weekly = await figures.weekly_shares(store, redis, today, 12)
    trend = []
    for index, monday in enumerate(w.monday for w in weekly[District.VALBY]):
        week_total = domain.Share()
        for series in weekly.values():
            week_total.merge(series[index].share)
        trend.append(
            WeekPoint(
                domain.period_name(domain.Period.WEEK, monday),
                week_total.share,
                week_total.total,
            )
        )
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
    cells = await store.range_cells(redis, today, today, by_service=False)
    funnel = domain.kvik_funnel(cells, await store.abandoned(redis, [today]))
    help_today = figures.by_last_part(await store.day_hashes(redis, ("kvik", "help"), [today]))
    answered, waited_ms = help_today.get("answered", 0), help_today.get("wait_ms", 0)
    kiosks = await store.kiosks(redis)
    return _TEMPLATES.get_template("dashboard.html").render(
        lang=lang,
        other_lang="en" if lang == "da" else "da",
        t=labels,
        today=today,
        updated=dt.datetime.now(domain.COPENHAGEN).strftime("%Y-%m-%d %H:%M"),
        window=labels["window"].format(days=settings.share_window_days),
        target=TARGET,
        districts=districts,
        overall=overall,
        trend=trend,
        trend_points=_polyline(trend),
        channels=channels,
        channel_total=max(1, sum(c.total for c in channels)),
        funnel=funnel,
        mean_wait=waited_ms / 1000 / answered if answered else None,
        kiosks_online=sum(k.state == "online" for k in kiosks),
        kiosks_known=len(kiosks),
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
    request: Request, lang: Annotated[Literal["da", "en"], Query()] = "da"
) -> HTMLResponse:
    """The dashboard page (no role needed: aggregate figures only)."""
    settings: MetricsSettings = request.app.state.settings
    if not settings.dashboard_page:
        return HTMLResponse("Not Found", status_code=404)
    html = await render_page(
        request.app.state.metrics_store,
        request.app.state.runtime.redis,
        settings,
        domain.today_in_copenhagen(),
        lang,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
