"""Business figures for Prometheus, read from Redis at scrape time.

Not in-process counters: every replica reports the same figures, and they are right after a
restart. Label values are bounded by the reference data, never by traffic: 10 districts, 5
channels, 2 modes, 3 outcomes, 4 kinds of help, 4 windows; ``entry_id`` by the registry's KVIK
points. Services are deliberately not a label (the catalogue could grow); per-service figures
are in the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.contracts import District
from services.metrics import domain, figures
from services.metrics.forecast import Outlook
from services.metrics.settings import MetricsSettings
from services.metrics.store import HELP_WAIT_BUCKETS, SEP, MetricsStore
from services.plumbing.logging import get_logger

log = get_logger(__name__)

ALL = "all"
"""The ``district`` label value of a figure over all districts."""


async def business_metrics(
    store: MetricsStore, redis: Redis, settings: MetricsSettings, today: dt.date
) -> list[Metric]:
    """Every business metric family, read from Redis now."""
    totals = await store.totals(redis)
    families: list[Metric] = []
    families.append(_contacts(totals))
    families.append(await _shares(store, redis, settings, today))
    families.extend(await _forecasts(store, redis, settings, today))
    families.append(await _coverage(store, redis))
    families.extend(await _kvik(store, redis))
    families.extend(await _mobile(store, redis, totals))
    return families


async def render(app: FastAPI) -> bytes:
    """Prometheus text of the business metrics (``scrape_extra`` of the metrics app)."""
    settings: MetricsSettings = app.state.settings
    store: MetricsStore = app.state.metrics_store
    try:
        families = await business_metrics(
            store, app.state.runtime.redis, settings, domain.today_in_copenhagen()
        )
    except (RedisConnectionError, RedisTimeoutError) as exc:
        # The process's own metrics (kanalhub_dependency_up among them) still go out: a scrape
        # that fails as a whole would hide what is wrong.
        log.warning("business metrics skipped: Redis does not answer", error=repr(exc))
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


class _Fixed:
    """A collector yielding families computed before the (synchronous) scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _contacts(totals: dict[tuple[str, str, str], int]) -> Metric:
    family = CounterMetricFamily(
        "kanalhub_contacts",
        "Citizen contacts counted, by district, channel and mode (since the beginning).",
        labels=["district", "channel", "mode"],
    )
    for (district, channel, mode), count in sorted(totals.items()):
        family.add_metric([district, channel, mode], count)
    return family


async def _shares(
    store: MetricsStore, redis: Redis, settings: MetricsSettings, today: dt.date
) -> Metric:
    family = GaugeMetricFamily(
        "kanalhub_digital_share_ratio",
        "Self-service contacts / all contacts: current day, ISO week, month, and the last "
        "window_days days (window 28d by default).",
        labels=["district", "window"],
    )
    windows = {
        "day": (today, today),
        "week": domain.period_days(domain.Period.WEEK, today),
        "month": domain.period_days(domain.Period.MONTH, today),
        f"{settings.share_window_days}d": (
            today - dt.timedelta(days=settings.share_window_days - 1),
            today,
        ),
    }
    for window, (first, last) in windows.items():
        shares = await figures.shares_in(store, redis, first, min(last, today))
        for district, share in [*shares.items(), (ALL, figures.total_of(shares))]:
            if share.share is not None:
                family.add_metric([str(district), window], share.share)
    return family


async def _forecasts(
    store: MetricsStore, redis: Redis, settings: MetricsSettings, today: dt.date
) -> list[Metric]:
    crossing = GaugeMetricFamily(
        "kanalhub_digital_share_forecast_timestamp_seconds",
        "When the Theil-Sen fit over weekly shares reaches 80 % (Unix time of that Monday); "
        "absent when not on track.",
        labels=["district"],
    )
    on_track = GaugeMetricFamily(
        "kanalhub_digital_share_on_track",
        "1 when the district has reached 80 % or its fit reaches it within the horizon.",
        labels=["district"],
    )
    results = await figures.forecasts(
        store, redis, today, settings.forecast_weeks, settings.forecast_horizon_weeks
    )
    for district, result in results.items():
        if result.outlook is Outlook.INSUFFICIENT_DATA:
            continue
        on_track.add_metric(
            [district], float(result.outlook in (Outlook.REACHED, Outlook.ON_TRACK))
        )
        if result.crossing is not None:
            midnight = dt.datetime.combine(result.crossing, dt.time(), domain.COPENHAGEN)
            crossing.add_metric([district], midnight.timestamp())
    return [crossing, on_track]


async def _coverage(store: MetricsStore, redis: Redis) -> Metric:
    family = GaugeMetricFamily(
        "kanalhub_district_covered",
        "1 when the district has an open citizen-service entry (centre, KVIK point, mobile "
        "stop) in the registry.",
        labels=["district"],
    )
    for district, entries in (await figures.coverage(store, redis)).items():
        family.add_metric([district], float(bool(entries)))
    return family


async def _kvik(store: MetricsStore, redis: Redis) -> list[Metric]:
    sessions = CounterMetricFamily(
        "kanalhub_kvik_sessions",
        "KVIK sessions by district, outcome (completed, abandoned, referred) and staff help.",
        labels=["district", "outcome", "help"],
    )
    for field, count in sorted((await store.flat_hash(redis, "kvik", "sessions")).items()):
        sessions.add_metric(field.split(SEP), count)
    requests = CounterMetricFamily(
        "kanalhub_help_requests",
        "Requests for staff help from KVIK kiosks, by district and help channel.",
        labels=["district", "channel"],
    )
    for field, count in sorted((await store.flat_hash(redis, "kvik", "help", "requests")).items()):
        requests.add_metric(field.split(SEP), count)
    wait = HistogramMetricFamily(
        "kanalhub_help_wait_seconds",
        "Time from a kiosk's help request to staff answering it (time to help).",
        labels=["channel"],
    )
    for channel, histogram in sorted((await store.help_wait(redis)).items()):
        buckets = [(floatToGoString(b), histogram.buckets.get(b, 0)) for b in HELP_WAIT_BUCKETS]
        wait.add_metric([channel], [*buckets, ("+Inf", histogram.count)], histogram.total_seconds)
    online = GaugeMetricFamily(
        "kanalhub_kiosks_online",
        "KVIK kiosks whose last report was online, by district and registry entry.",
        labels=["district", "entry_id"],
    )
    registered = GaugeMetricFamily(
        "kanalhub_kiosks_registered",
        "KVIK kiosks registered, by district and registry entry.",
        labels=["district", "entry_id"],
    )
    counts: dict[tuple[str, str], list[int]] = {}
    for kiosk in await store.kiosks(redis):
        tally = counts.setdefault((kiosk.district, kiosk.entry_id), [0, 0])
        tally[0] += kiosk.state == "online"
        tally[1] += 1
    for (district, entry_id), (up, known) in sorted(counts.items()):
        online.add_metric([district, entry_id], up)
        registered.add_metric([district, entry_id], known)
    return [sessions, requests, wait, online, registered]


async def _mobile(
    store: MetricsStore, redis: Redis, contact_totals: dict[tuple[str, str, str], int]
) -> list[Metric]:
    totals = await store.flat_hash(redis, "mobile", "totals")
    visits = CounterMetricFamily(
        "kanalhub_mobile_visits",
        "Mobile citizen-service visits by district and state reached.",
        labels=["district", "state"],
    )
    onboardings = CounterMetricFamily(
        "kanalhub_mobile_onboardings",
        "Citizens helped onto digital self-service at mobile visits, by district.",
        labels=["district"],
    )
    staffed = CounterMetricFamily(
        "kanalhub_mobile_staffed_hours",
        "Staff hours of completed mobile visits (length x staff), by district.",
        labels=["district"],
    )
    for district in District:
        for state in ("planned", "completed", "cancelled"):
            visits.add_metric([district, state], totals.get(f"{district}{SEP}{state}", 0))
        onboardings.add_metric([district], totals.get(f"{district}{SEP}onboarded", 0))
        staffed.add_metric([district], totals.get(f"{district}{SEP}staffed_seconds", 0) / 3600)
    contacts = CounterMetricFamily(
        "kanalhub_mobile_contacts",
        "Contacts recorded at mobile visits, by district and mode.",
        labels=["district", "mode"],
    )
    for (district, channel, mode), count in sorted(contact_totals.items()):
        if channel == "mobile":
            contacts.add_metric([district, mode], count)
    return [visits, contacts, onboardings, staffed]
