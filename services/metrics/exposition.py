"""Business figures for Prometheus, read from Redis at scrape time.

Not in-process counters: every replica reports the same figures, and they are right after a
restart. Label values are bounded by the reference data, never by traffic: 10 districts, 5
channels, 2 modes, 3 outcomes, 4 kinds of help, 4 windows, 2 needs groups; ``entry_id`` by the
registry's KVIK points. Services are deliberately not a label (the catalogue could grow);
per-service figures are in the API. Per-entry contacts carry ``entry_id`` for at most
``prometheus_entries`` entry points known from the registry (the most used); the rest sum into
``entry_id="other"`` per district, and contacts at a site without an entry into
``entry_id="none"``.
"""

from __future__ import annotations

import datetime as dt
import math
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

from services.contracts import ContactMode, District, TicketOutcome
from services.contracts.geography import COPENHAGEN
from services.metrics import domain, figures, needs, place_usage, tickets
from services.metrics.forecast import Outlook
from services.metrics.settings import MetricsSettings
from services.metrics.store import HELP_WAIT_BUCKETS, SEP, MetricsStore
from services.plumbing.logging import get_logger

log = get_logger(__name__)


def _go_float(value: float) -> str:
    """A histogram bound as Prometheus writes it (``15.0``, ``+Inf``), the way the client's own
    histograms label their buckets."""
    # prometheus_client ships no annotations for its utils; the function takes and returns these.
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


ALL = "all"
"""The ``district`` label value of a figure over all districts."""


async def business_metrics(
    store: MetricsStore, redis: Redis, settings: MetricsSettings, today: dt.date
) -> list[Metric]:
    """Every business metric family, read from Redis now."""
    totals = await store.totals(redis)
    families: list[Metric] = []
    families.append(_contacts(totals))
    special = await figures.special_needs(store, redis)
    families.extend(await _shares(store, redis, settings, today, special))
    families.extend(await _forecasts(store, redis, settings, today, special))
    families.extend(_target(settings))
    families.append(await _coverage(store, redis))
    families.extend(await _kvik(store, redis))
    families.extend(await _mobile(store, redis, totals))
    families.extend(await _desk(store, redis))
    families.extend(await _entry_usage(store, redis, settings.prometheus_entries))
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
    store: MetricsStore,
    redis: Redis,
    settings: MetricsSettings,
    today: dt.date,
    special: frozenset[str],
) -> list[Metric]:
    family = GaugeMetricFamily(
        "kanalhub_digital_share_ratio",
        "Self-service contacts / all contacts (overall: general and special needs): current "
        "day, ISO week, month, and the last window_days days (window 28d by default).",
        labels=["district", "window"],
    )
    by_needs = GaugeMetricFamily(
        "kanalhub_digital_share_by_needs_ratio",
        "Self-service / all contacts of one needs group (needs=general: the headline the "
        "target is about; needs=special), per district (or all) and window.",
        labels=["district", "window", "needs"],
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
        shares = await figures.needs_shares_in(
            store, redis, first, min(last, today), special=special
        )
        for district, split in [*shares.items(), (ALL, needs.total_of(shares))]:
            if split.overall.share is not None:
                family.add_metric([str(district), window], split.overall.share)
            for group in needs.NeedsGroup:
                share = split.group(group).share
                if share is not None:
                    by_needs.add_metric([str(district), window, group.value], share)
    return [family, by_needs]


async def _forecasts(
    store: MetricsStore,
    redis: Redis,
    settings: MetricsSettings,
    today: dt.date,
    special: frozenset[str],
) -> list[Metric]:
    crossing = GaugeMetricFamily(
        "kanalhub_digital_share_forecast_timestamp_seconds",
        "When the Theil-Sen fit over weekly general-needs shares reaches the target (Unix time "
        "of that Monday); absent when reached, not within the horizon or without data.",
        labels=["district"],
    )
    on_track = GaugeMetricFamily(
        "kanalhub_digital_share_on_track",
        "1 when the district's general-needs share has reached the target or its fit reaches "
        "it by the deadline; 0 when behind or not within the horizon.",
        labels=["district"],
    )
    behind = GaugeMetricFamily(
        "kanalhub_forecast_weeks_behind_deadline",
        "Weeks from the deadline to when the district's general-needs share reaches the "
        "target: 0 reached or on track, N behind, +Inf not within the horizon (the fit falls, "
        "is flat or crosses too late); absent with too few weeks of data.",
        labels=["district"],
    )
    results = await figures.forecasts(store, redis, today, settings, special)
    for district, result in results.items():
        if result.outlook is Outlook.INSUFFICIENT_DATA:
            continue
        on_track.add_metric(
            [district], float(result.outlook in (Outlook.REACHED, Outlook.ON_TRACK))
        )
        behind.add_metric(
            [district], math.inf if result.weeks_behind is None else float(result.weeks_behind)
        )
        if result.crossing is not None:
            midnight = dt.datetime.combine(result.crossing, dt.time(), COPENHAGEN)
            crossing.add_metric([district], midnight.timestamp())
    return [crossing, on_track, behind]


def _target(settings: MetricsSettings) -> list[Metric]:
    """The configured target and deadline, so that dashboards draw what the service uses."""
    share = GaugeMetricFamily(
        "kanalhub_target_share_ratio",
        "The general-needs digital share to reach (KANALHUB_METRICS_TARGET_SHARE).",
    )
    share.add_metric([], settings.target_share)
    deadline = GaugeMetricFamily(
        "kanalhub_target_deadline_timestamp_seconds",
        "The day to reach it by, as Unix time of its midnight in Copenhagen "
        "(KANALHUB_METRICS_TARGET_DEADLINE).",
    )
    midnight = dt.datetime.combine(settings.target_deadline, dt.time(), COPENHAGEN)
    deadline.add_metric([], midnight.timestamp())
    return [share, deadline]


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
        buckets = [(_go_float(b), histogram.buckets.get(b, 0)) for b in HELP_WAIT_BUCKETS]
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
    for (district_name, channel, mode), count in sorted(contact_totals.items()):
        if channel == "mobile":
            contacts.add_metric([district_name, mode], count)
    return [visits, contacts, onboardings, staffed]


async def _desk(store: MetricsStore, redis: Redis) -> list[Metric]:
    """Desk tickets per citizen-service centre since the beginning. ``entry_id`` is bounded by
    the entries with desks that sent tickets (a handful of centres), never by traffic."""
    totals = await store.desk_totals(redis)
    tickets_family = CounterMetricFamily(
        "kanalhub_desk_tickets",
        "Desk tickets of the citizen-service centres' queue systems, by entry and outcome "
        "(served: one counter contact; no_show: none).",
        labels=["entry_id", "outcome"],
    )
    entries = sorted({entry_id for entry_id, _ in totals})
    for entry_id in entries:
        for outcome in (TicketOutcome.SERVED, TicketOutcome.NO_SHOW):
            tickets_family.add_metric([entry_id, outcome], totals.get((entry_id, outcome), 0))
    families: list[Metric] = [tickets_family]
    for name, what, bounds, help_text in (
        (
            "kanalhub_desk_wait_seconds",
            tickets.WAIT,
            tickets.WAIT_BUCKETS,
            "Waiting time at the desks, issued -> called, of every called ticket, by entry.",
        ),
        (
            "kanalhub_desk_service_seconds",
            tickets.SERVICE,
            tickets.SERVICE_BUCKETS,
            "Service time at the desks, called -> ended, of served tickets, by entry.",
        ),
    ):
        histogram = HistogramMetricFamily(name, help_text, labels=["entry_id"])
        for entry_id in entries:
            running = 0
            buckets = []
            for bound in bounds:
                running += totals.get((entry_id, f"{what}{SEP}{bound:g}"), 0)
                buckets.append((_go_float(bound), running))
            count = totals.get((entry_id, f"{what}_count"), 0)
            buckets.append(("+Inf", count))
            histogram.add_metric(
                [entry_id], buckets, totals.get((entry_id, f"{what}_ms"), 0) / 1000
            )
        families.append(histogram)
    return families


OTHER_ENTRIES = "other"
"""The ``entry_id`` of the contacts of entries beyond the cap, or unknown to the registry."""
NO_ENTRY = "none"
"""The ``entry_id`` of contacts at a site without an entry (a mobile visit, no mobile stop)."""


async def _entry_usage(store: MetricsStore, redis: Redis, cap: int) -> list[Metric]:
    """Place-bound contacts per entry point since the beginning, and each named entry's site,
    kind and administration for joins (``* on (entry_id) group_left(site_id)``).

    Bounded: ``cap`` entries known from the registry keep their own series, chosen by contacts
    (then id) so the busiest stay visible; live place-bound entries without contacts are
    candidates too (at zero), so the least used show. Everything else goes into ``other`` or
    ``none`` per district: at most (cap + 2 x 10 districts) x 3 channels x 2 modes series.
    """
    contacts = CounterMetricFamily(
        "kanalhub_entry_contacts",
        "Place-bound contacts (KVIK, counter, mobile) per registry entry point, by district, "
        'channel and mode, since the beginning; entry_id="other" sums the entries beyond the '
        'cap, "none" contacts at a site without an entry.',
        labels=["entry_id", "district", "channel", "mode"],
    )
    info = GaugeMetricFamily(
        "kanalhub_entry_info",
        "1 for each entry point with its own kanalhub_entry_contacts series: its site, kind "
        "and administration (for joins by entry_id).",
        labels=["entry_id", "site_id", "kind", "administration", "district"],
    )
    cells = await store.usage_totals(redis)
    entries = await store.entries(redis)
    used: dict[str, int] = {}
    for cell in cells:
        if cell.entry_id is not None and cell.entry_id in entries:
            used[cell.entry_id] = used.get(cell.entry_id, 0) + cell.count
    idle = [
        entry_id
        for entry_id, entry in entries.items()
        if entry_id not in used and place_usage.UsageFilter().lists(entry)
    ]
    candidates = sorted([*used, *idle], key=lambda entry_id: (-used.get(entry_id, 0), entry_id))
    named = set(candidates[:cap])
    series: dict[tuple[str, str, str, str], int] = {}
    for cell in cells:
        if cell.entry_id is None:
            label = NO_ENTRY
        elif cell.entry_id in named:
            label = cell.entry_id
        else:
            label = OTHER_ENTRIES
        key = (label, cell.district.value, cell.channel.value, cell.mode.value)
        series[key] = series.get(key, 0) + cell.count
    for entry_id in sorted(named):
        entry = entries[entry_id]
        district = entry.district.value if entry.district is not None else ALL
        for channel, kinds in place_usage.HOME_KINDS.items():
            if entry.kind in kinds:
                for mode in ContactMode:
                    series.setdefault((entry_id, district, channel.value, mode.value), 0)
        info.add_metric(
            [
                entry_id,
                entry.site_id or "",
                entry.kind.value,
                entry.administration.value if entry.administration is not None else "",
                district,
            ],
            1.0,
        )
    for labels, count in sorted(series.items()):
        contacts.add_metric(list(labels), count)
    return [contacts, info]
