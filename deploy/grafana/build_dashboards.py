"""The Grafana dashboards, as code (``grafana-foundation-sdk``, the build for Grafana 11.3).

A build-time tool, not part of the runtime package: ``make dashboards`` (``python
deploy/grafana/build_dashboards.py``; ``--check`` only reports) writes one JSON file per
dashboard into ``deploy/grafana/dashboards/``, where the provisioning of the compose stack picks
them up. Its SDK is a dev dependency (pyproject.toml), installed where this runs.
The files are checked in; ``tests/unit/deploy/test_dashboards.py`` fails when they differ from
what this module generates, and ``tests/integration/deploy/test_panels_real_prometheus.py``
runs every panel's query against a real Prometheus scraping a running hub.

Five dashboards, each answering one question:

- **Channel shift** - how close is each district's general-needs share to the target, and will
  it get there by the deadline?
- **KVIK operations** - are the kiosks up, and do citizens finish their sessions alone?
- **Mobile citizen service** - what do the mobile visits deliver per visit and per hour staffed?
- **Buildings and entry points** - how much is each entry point and building used, by channel,
  and which are used least?
- **Pipeline health** - is the hub itself healthy (HTTP, consumers, outbox, dead letters)?

Panels use Grafana's ``$__rate_interval`` (for rates) and ``$__range`` (for totals over the
chosen time range); the dashboard variables are ``$district`` (all by default), ``$window``
and ``$service``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prom_model

from services.contracts.reference import District
from services.contracts.target import DIGITAL_TARGET_SHARE

DASHBOARD_DIR: Final = Path("deploy") / "grafana" / "dashboards"
"""Where the JSON files live, relative to the repository root."""

DATASOURCE: Final = model.DataSourceRef(type_val="prometheus", uid="prometheus")
"""The provisioned Prometheus datasource (deploy/grafana/provisioning/datasources)."""

# Okabe-Ito colours, distinguishable with the common forms of colour blindness.
BELOW: Final = "#D55E00"  # vermillion
WARN: Final = "#E69F00"  # orange
GOOD: Final = "#0072B2"  # blue
NEUTRAL: Final = "#999999"

# Selects the real districts of the share gauges, which also carry district="all".
DISTRICTS: Final = 'district=~"$district",district!="all"'

# Labels that tell replicas of a service apart (compose: instance; Kubernetes pod scraping:
# also the pod name, as the kubernetes-pods job of the Prometheus examples labels it).
REPLICA_LABELS: Final = "instance, pod, kubernetes_pod_name"


def once(expr: str) -> str:
    """``expr`` counted once, not once per replica of the metrics service.

    The business figures are computed from Redis, so every replica of the metrics service
    exposes the same values; a plain ``sum`` over replicas would double them. Dropping the
    labels that tell replicas apart and keeping the max leaves one copy.
    """
    return f"max without ({REPLICA_LABELS}) ({expr})"


TARGET: Final = once("kanalhub_target_share_ratio{}")
"""The configured target share, as the metrics service exposes it (KANALHUB_METRICS_TARGET_SHARE):
the dashboards never keep a target of their own."""

DEADLINE: Final = once("kanalhub_target_deadline_timestamp_seconds{}")
"""The configured deadline (Unix time of its midnight in Copenhagen)."""

TARGET_REF: Final = "TARGET"
"""The ref id of the query that gives a panel its threshold (``target_from_metrics``)."""


# ---------------------------------------------------------------------------------------------
# building blocks


def query(
    expr: str, legend: str = "", *, ref_id: str = "A", instant: bool = False
) -> prom.Dataquery:
    """One PromQL target; ``legend`` is Grafana's legend format (``{{label}}``)."""
    target = prom.Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    if instant:
        target = target.instant().format(prom_model.PromQueryFormat.TABLE)
    return target


def thresholds(*steps: tuple[float | None, str]) -> builder.ThresholdsConfig:
    """Absolute thresholds; the first step's value is ``None`` (from minus infinity)."""
    return (
        builder.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def share_thresholds() -> builder.ThresholdsConfig:
    """Below the target in vermillion, at or above it in blue. The step's value here is only a
    placeholder (the default target): ``target_from_metrics`` replaces it with the configured
    target when the panel is drawn."""
    return thresholds((None, BELOW), (DIGITAL_TARGET_SHARE, GOOD))


def target_from_metrics() -> list[model.DataTransformerConfig]:
    """Grafana's "Config from query results": the value of query ``TARGET_REF`` (the
    configured target) becomes the panel's first threshold, and that query is not drawn."""
    return [
        model.DataTransformerConfig(
            id_val="configFromData",
            options={
                "configRefId": TARGET_REF,
                "mappings": [{"fieldName": "Value", "handlerKey": "threshold1"}],
            },
        )
    ]


def target_query() -> prom.Dataquery:
    """The configured target, for ``target_from_metrics``."""
    return query(TARGET, "target", ref_id=TARGET_REF, instant=True)


def graph(title: str, description: str, *targets: prom.Dataquery) -> timeseries.Panel:
    """A time series panel, legend below."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .height(8)
        .span(12)
        .line_width(2)
        .fill_opacity(10)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def stacked(title: str, description: str, *targets: prom.Dataquery) -> timeseries.Panel:
    """A stacked time series (bars): parts of a whole over time."""
    return (
        graph(title, description, *targets)
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    )


def single(title: str, description: str, target: prom.Dataquery, unit: str) -> stat.Panel:
    """A stat panel showing the last value of each series."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .unit(unit)
        .height(5)
        .span(6)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def bars(title: str, description: str, target: prom.Dataquery, unit: str) -> bargauge.Panel:
    """A horizontal bar gauge, one bar per series (per district, per entry ...)."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .unit(unit)
        .height(8)
        .span(12)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .show_unfilled(True)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def district_variable() -> builder.CustomVariable:
    """``$district``: the ten districts by their Danish names, all selected by default.

    The options come from ``services.contracts.reference.District``, so the dashboards never
    keep their own list; the value is the slug used as the Prometheus label.
    """
    options = ",".join(f"{d.display_name} : {d.value}" for d in District)
    return (
        builder.CustomVariable("district")
        .label("District / bydel")
        .values(options)
        .multi(True)
        .include_all(True)
        .all_value(".+")  # ".+", not ".*": series without a district label stay out
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def window_variable() -> builder.CustomVariable:
    """``$window``: which period the share gauges cover (Copenhagen calendar)."""
    return (
        builder.CustomVariable("window")
        .label("Share window")
        .values("last 28 days : 28d,today : day,this week : week,this month : month")
        .current(model.VariableOption(selected=True, text="last 28 days", value="28d"))
    )


def service_variable() -> builder.QueryVariable:
    """``$service``: the services Prometheus scrapes (the ``service`` target label)."""
    return (
        builder.QueryVariable("service")
        .label("Service")
        .datasource(DATASOURCE)
        # Every service exposes kanalhub_dependency_up; its service label is there whether
        # the scrape job adds it (compose) or not (Kubernetes pod annotations).
        .query("label_values(kanalhub_dependency_up, service)")
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def new_dashboard(uid: str, title: str, description: str) -> builder.Dashboard:
    """A dashboard with the settings all four share."""
    return (
        builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["kanalhub"])
        .timezone("Europe/Copenhagen")
        .week_start("monday")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .annotation(
            # Grafana's built-in "Annotations & Alerts", as in every dashboard Grafana exports.
            builder.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(model.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
    )


# ---------------------------------------------------------------------------------------------
# the four dashboards


def channel_shift() -> builder.Dashboard:
    """Channel shift: the general-needs share (the headline) against the configured target and
    deadline, the overall and special-needs shares beside it, channel mix, forecast, coverage."""

    def by_needs(group: str, districts: str = DISTRICTS) -> str:
        """The share of one needs group in the chosen window, once."""
        return once(
            f'kanalhub_digital_share_by_needs_ratio{{{districts},window="$window",needs="{group}"}}'
        )

    headline = by_needs("general")
    on_track = once(f"kanalhub_digital_share_on_track{{{DISTRICTS}}}")
    covered = once(f"kanalhub_district_covered{{{DISTRICTS}}}")
    behind = once(f"kanalhub_forecast_weeks_behind_deadline{{{DISTRICTS}}}")

    def contacts(window: str, matchers: str = "") -> str:
        """Contacts counted over ``window``, once."""
        return once(
            f'increase(kanalhub_contacts_total{{district=~"$district"{matchers}}}[{window}])'
        )

    self_service = contacts("$__range", ',mode="self_service"')
    return (
        new_dashboard(
            "kanalhub-channel-shift",
            "Channel shift",
            "How close is each district's general-needs share to the target, and will it get "
            "there by the deadline? Share = self-service contacts / all contacts; the headline "
            "is the general-needs share (the target is about general-needs enquiries; citizens "
            "with special needs get personal contact first). Target and deadline come from the "
            "metrics service's configuration.",
        )
        .with_variable(district_variable())
        .with_variable(window_variable())
        .with_row(builder.Row("General-needs share against the target"))
        .with_panel(
            single(
                "General needs, Copenhagen (headline)",
                "Digital share of general-needs contacts in the whole municipality, for the "
                "chosen window; blue at or above the configured target.",
                query(by_needs("general", 'district="all"'), "general needs"),
                "percentunit",
            )
            .with_target(target_query())
            .with_transformation(target_from_metrics()[0])
            .thresholds(share_thresholds())
            .min(0)
            .max(1)
        )
        .with_panel(
            single(
                "Target",
                "The general-needs share to reach (KANALHUB_METRICS_TARGET_SHARE).",
                query(TARGET, "target"),
                "percentunit",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            single(
                "Deadline",
                "The day to reach it by (KANALHUB_METRICS_TARGET_DEADLINE).",
                query(f"{DEADLINE} * 1000", "deadline"),
                "dateTimeAsIsoNoDateIfToday",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            single(
                "Districts on track",
                "Districts whose general-needs share has reached the target or whose trend "
                "reaches it by the deadline, of those selected.",
                query(f"sum({on_track})", "on track"),
                "none",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            single(
                "All contacts, Copenhagen",
                "Digital share of all contacts (general and special needs), for the window.",
                query(
                    once('kanalhub_digital_share_ratio{district="all",window="$window"}'), "share"
                ),
                "percentunit",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            single(
                "Special needs, Copenhagen",
                "Digital share of special-needs contacts: reported beside the headline, not "
                "held against the target.",
                query(by_needs("special", 'district="all"'), "special needs"),
                "percentunit",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            single(
                "Districts covered",
                "Districts with at least one open citizen-service entry (registry).",
                query(f"sum({covered})", "covered"),
                "none",
            ).thresholds(thresholds((None, BELOW), (10, GOOD)))
        )
        .with_panel(
            single(
                "Self-service contacts in range",
                "Contacts completed without staff, over the dashboard's time range.",
                query(f"sum({self_service})", "self-service"),
                "short",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            bars(
                "General-needs share per district",
                "Latest general-needs share per district; the bar turns blue at the target.",
                query(headline, "{{district}}"),
                "percentunit",
            )
            .with_target(target_query())
            .with_transformation(target_from_metrics()[0])
            .thresholds(share_thresholds())
            .min(0)
            .max(1)
        )
        .with_panel(
            graph(
                "General-needs share per district over time",
                "General-needs share per district; the dashed line is the target.",
                query(headline, "{{district}}"),
                target_query(),
            )
            .with_transformation(target_from_metrics()[0])
            .unit("percentunit")
            .min(0)
            .max(1)
            .thresholds(share_thresholds())
            .thresholds_style(
                common_builder.GraphThresholdsStyleConfig().mode(
                    common.GraphThresholdsStyleMode.DASHED
                )
            )
        )
        .with_panel(
            bars(
                "Weeks behind the deadline per district",
                "From the forecast of the general-needs share: 0 = reached or on track, N = "
                "reaches the target N weeks after the deadline, Infinity = not within the "
                "forecast horizon. Districts with too few weeks of data are not listed.",
                query(behind, "{{district}}"),
                "none",
            ).thresholds(thresholds((None, GOOD), (1, BELOW)))
        )
        .with_panel(
            graph(
                "All contacts and special needs per district over time",
                "Overall and special-needs shares per district, beside the headline.",
                query(
                    once(f'kanalhub_digital_share_ratio{{{DISTRICTS},window="$window"}}'),
                    "{{district}} all",
                ),
                query(by_needs("special"), "{{district}} special", ref_id="B"),
            )
            .unit("percentunit")
            .min(0)
            .max(1)
        )
        .with_row(builder.Row("Channel mix"))
        .with_panel(
            stacked(
                "Contacts by channel",
                "Contacts per channel (digital, phone, counter, KVIK, mobile), stacked.",
                query(f"sum by (channel) ({contacts('$__rate_interval')})", "{{channel}}"),
            ).unit("short")
        )
        .with_panel(
            stacked(
                "Self-service vs assisted",
                "Contacts by mode, as a share of all contacts in each interval.",
                query(f"sum by (mode) ({contacts('$__rate_interval')})", "{{mode}}"),
            )
            .unit("percentunit")
            .stacking(common_builder.StackingConfig().mode(common.StackingMode.PERCENT))
        )
        .with_row(builder.Row("Forecast and coverage"))
        .with_panel(
            table.Panel()
            .title("Forecast: when each district reaches the target")
            .description(
                "Monday of the week the trend of the weekly general-needs share crosses the "
                "target. Districts that have reached it, or whose trend does not get there "
                "within the horizon, have no date and are not listed."
            )
            .datasource(DATASOURCE)
            .with_target(
                query(
                    once(f"kanalhub_digital_share_forecast_timestamp_seconds{{{DISTRICTS}}}")
                    + " * 1000",
                    instant=True,
                )
            )
            .with_transformation(
                model.DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {
                            "Time": True,
                            "__name__": True,
                            "instance": True,
                            "job": True,
                            "service": True,
                            "exported_service": True,
                        },
                        "renameByName": {"district": "District", "Value": "Reaches the target"},
                    },
                )
            )
            .unit("dateTimeAsLocalNoDateIfToday")
            .height(8)
            .span(12)
        )
        .with_panel(
            bars(
                "On track and covered, per district",
                "1 = on track for the target by the deadline / has an open citizen-service "
                "entry; 0 = not.",
                query(on_track, "{{district}} on track"),
                "none",
            )
            .with_target(query(covered, "{{district}} covered", ref_id="B"))
            .thresholds(thresholds((None, BELOW), (1, GOOD)))
            .mappings(
                [
                    model.ValueMap(
                        options={
                            "0": model.ValueMappingResult(text="no", color=BELOW),
                            "1": model.ValueMappingResult(text="yes", color=GOOD),
                        }
                    )
                ]
            )
            .min(0)
            .max(1)
        )
    )


def kvik_operations() -> builder.Dashboard:
    """KVIK operations: sessions, completion, help and kiosk availability."""
    selected = '{district=~"$district"}'

    def sessions(window: str, matchers: str = "", function: str = "increase") -> str:
        """KVIK sessions (from the metrics service) over ``window``, once."""
        selector = f'kanalhub_kvik_sessions_total{{district=~"$district"{matchers}}}'
        return once(f"{function}({selector}[{window}])")

    def share_of_sessions(matchers: str) -> str:
        """Sessions matching ``matchers`` / all sessions, over the time range."""
        return f"sum({sessions('$__range', matchers)}) / sum({sessions('$__range')})"

    per_hour = sessions("$__rate_interval", function="rate")
    online = once(f"kanalhub_kiosks_online{selected}")
    registered = once(f"kanalhub_kiosks_registered{selected}")
    help_requests = once(f"rate(kanalhub_help_requests_total{selected}[$__rate_interval])")
    help_wait = once("rate(kanalhub_help_wait_seconds_bucket[$__rate_interval])")
    return (
        new_dashboard(
            "kanalhub-kvik",
            "KVIK operations",
            "Are the KVIK kiosks up, and do citizens finish their self-service sessions alone?",
        )
        .with_variable(district_variable())
        .with_row(builder.Row("Sessions"))
        .with_panel(
            single(
                "Completion rate",
                "Completed sessions / all sessions ended, over the time range.",
                query(share_of_sessions(',outcome="completed"'), "completed"),
                "percentunit",
            ).thresholds(thresholds((None, BELOW), (0.7, WARN), (0.85, GOOD)))
        )
        .with_panel(
            single(
                "Abandonment rate",
                "Abandoned sessions / all sessions ended. Abandoned sessions are not contacts.",
                query(share_of_sessions(',outcome="abandoned"'), "abandoned"),
                "percentunit",
            ).thresholds(thresholds((None, GOOD), (0.15, WARN), (0.3, BELOW)))
        )
        .with_panel(
            single(
                "Help rate",
                "Sessions in which the citizen needed staff (video, phone or in person).",
                query(share_of_sessions(',help!="none"'), "with help"),
                "percentunit",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            single(
                "Kiosks online",
                "Kiosks online / kiosks registered, in the selected districts.",
                query(f"sum({online}) / sum({registered})", "online"),
                "percentunit",
            ).thresholds(thresholds((None, BELOW), (0.9, WARN), (1, GOOD)))
        )
        .with_panel(
            stacked(
                "Sessions per hour, by outcome",
                "Completed, abandoned and referred sessions per hour.",
                query(f"sum by (outcome) ({per_hour}) * 3600", "{{outcome}}"),
            ).unit("short")
        )
        .with_panel(
            stacked(
                "Sessions per hour, by help",
                "Sessions by the help the citizen got: none, video, phone, in person.",
                query(f"sum by (help) ({per_hour}) * 3600", "{{help}}"),
            ).unit("short")
        )
        .with_row(builder.Row("Help"))
        .with_panel(
            graph(
                "Help requests per hour",
                "Citizens at a kiosk asking staff for help, by channel.",
                query(f"sum by (channel) ({help_requests}) * 3600", "{{channel}}"),
            ).unit("short")
        )
        .with_panel(
            graph(
                "Time to help",
                "From the request to staff answering (all districts), median and 90th percentile.",
                query(
                    f"histogram_quantile(0.5, sum by (le, channel) ({help_wait}))",
                    "{{channel}} median",
                ),
                query(
                    f"histogram_quantile(0.9, sum by (le, channel) ({help_wait}))",
                    "{{channel}} p90",
                    ref_id="B",
                ),
            ).unit("s")
        )
        .with_row(builder.Row("Kiosks"))
        .with_panel(
            bars(
                "Kiosks online per entry",
                "Kiosks online at each KVIK point (entry).",
                query(f"sum by (entry_id) ({online})", "{{entry_id}}"),
                "none",
            ).thresholds(thresholds((None, BELOW), (1, GOOD)))
        )
        .with_panel(
            bars(
                "Sessions per kiosk, per district",
                "Sessions ended over the time range divided by the kiosks registered.",
                query(
                    f"sum by (district) ({sessions('$__range')}) / "
                    f"sum by (district) ({registered})",
                    "{{district}}",
                ),
                "short",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
    )


def mobile_service() -> builder.Dashboard:
    """Mobile citizen service: visits, contacts and onboardings per visit, utilisation."""

    def counted(metric: str, window: str, matchers: str = "") -> str:
        """``increase`` of a mobile counter over ``window`` in the selected districts, once."""
        return once(f'increase({metric}{{district=~"$district"{matchers}}}[{window}])')

    completed = counted("kanalhub_mobile_visits_total", "$__range", ',state="completed"')
    contacts = counted("kanalhub_mobile_contacts_total", "$__range")
    staffed = counted("kanalhub_mobile_staffed_hours_total", "$__range")
    onboardings = counted("kanalhub_mobile_onboardings_total", "$__range")
    return (
        new_dashboard(
            "kanalhub-mobile",
            "Mobile citizen service",
            "What do the mobile citizen-service visits deliver, per visit and per staffed hour?",
        )
        .with_variable(district_variable())
        .with_row(builder.Row("Visits"))
        .with_panel(
            single(
                "Visits in range, by state",
                "Visits planned, completed and cancelled over the time range.",
                query(
                    f"sum by (state) ({counted('kanalhub_mobile_visits_total', '$__range')})",
                    "{{state}}",
                ),
                "short",
            )
            .thresholds(thresholds((None, NEUTRAL)))
            .span(12)
        )
        .with_panel(
            single(
                "Contacts per completed visit",
                "Contacts recorded at visits / visits completed, over the time range.",
                query(f"sum({contacts}) / sum({completed})", "contacts per visit"),
                "short",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            single(
                "Digital onboardings per completed visit",
                "Citizens helped onto digital self-service, per visit.",
                query(f"sum({onboardings}) / sum({completed})", "onboardings per visit"),
                "short",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            stacked(
                "Visits over time, by state",
                "Visits planned, completed and cancelled per interval.",
                query(
                    "sum by (state) "
                    f"({counted('kanalhub_mobile_visits_total', '$__rate_interval')})",
                    "{{state}}",
                ),
            ).unit("short")
        )
        .with_panel(
            stacked(
                "Contacts at visits, by mode",
                "Contacts at mobile visits, self-service vs assisted.",
                query(
                    "sum by (mode) "
                    f"({counted('kanalhub_mobile_contacts_total', '$__rate_interval')})",
                    "{{mode}}",
                ),
            ).unit("short")
        )
        .with_row(builder.Row("Utilisation per place"))
        .with_panel(
            bars(
                "Contacts per staffed hour, per district",
                "Contacts recorded / staff hours at completed visits, over the time range.",
                query(
                    f"sum by (district) ({contacts}) / sum by (district) ({staffed})",
                    "{{district}}",
                ),
                "short",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            bars(
                "Staffed hours, per district",
                "Staff hours spent at completed visits over the time range.",
                query(f"sum by (district) ({staffed})", "{{district}}"),
                "h",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
    )


def buildings() -> builder.Dashboard:
    """Buildings and entry points: how each entry point and site is used, by channel."""
    selected = 'district=~"$district"'
    named = f'{selected},entry_id!~"other|none"'

    def contacts(window: str, matchers: str = selected) -> str:
        """Place-bound contacts per entry point over ``window``, once."""
        return once(f"increase(kanalhub_entry_contacts_total{{{matchers}}}[{window}])")

    def by_entry_label(label: str) -> str:
        """Contacts in range summed by a label of the entry (its site, its administration),
        joined from ``kanalhub_entry_info`` (entries beyond the cap have no info)."""
        return (
            f"sum by ({label}) ({contacts('$__range', named)} * on (entry_id) "
            f"group_left({label}) max by (entry_id, {label}) "
            f"({once(f'kanalhub_entry_info{{{selected}}}')}))"
        )

    in_range = contacts("$__range", named)
    self_service = contacts("$__range", f'{selected},mode="self_service"')
    return (
        new_dashboard(
            "kanalhub-buildings",
            "Buildings and entry points",
            "How are the municipality's buildings and entry points used? Place-bound contacts "
            "(KVIK, counter, mobile) per entry point and site, by channel and mode. Contacts "
            "per open hour and per service: GET /usage/entries (docs/metrics.md).",
        )
        .with_variable(district_variable())
        .with_row(builder.Row("Entry points"))
        .with_panel(
            single(
                "Place-bound contacts in range",
                "KVIK, counter and mobile contacts at entry points and sites, over the range.",
                query(f"sum({contacts('$__range')})", "contacts"),
                "short",
            )
            .thresholds(thresholds((None, NEUTRAL)))
            .span(8)
        )
        .with_panel(
            single(
                "Entry points with contacts",
                "Entry points (with their own series) that handled a contact in the range.",
                query(f"count(sum by (entry_id) ({in_range}) > 0)", "entry points"),
                "short",
            )
            .thresholds(thresholds((None, NEUTRAL)))
            .span(8)
        )
        .with_panel(
            single(
                "Self-service share at entry points",
                "Self-service / all place-bound contacts in the range (KVIK without help, "
                "citizens on their own device at mobile visits).",
                query(f"sum({self_service}) / sum({contacts('$__range')})", "self-service share"),
                "percentunit",
            )
            .thresholds(thresholds((None, NEUTRAL)))
            .span(8)
        )
        .with_panel(
            stacked(
                "Contacts at entry points, by channel",
                "Place-bound contacts per interval, KVIK, counter and mobile stacked.",
                query(
                    f"sum by (channel) ({contacts('$__rate_interval')})",
                    "{{channel}}",
                ),
            ).unit("short")
        )
        .with_panel(
            stacked(
                "Contacts at entry points, by mode",
                "Self-service vs assisted place-bound contacts per interval.",
                query(f"sum by (mode) ({contacts('$__rate_interval')})", "{{mode}}"),
            ).unit("short")
        )
        .with_panel(
            bars(
                "Most used entry points",
                "The ten entry points with the most contacts in the range.",
                query(f"topk(10, sum by (entry_id) ({in_range}))", "{{entry_id}}"),
                "short",
            ).thresholds(thresholds((None, GOOD)))
        )
        .with_panel(
            bars(
                "Least used entry points",
                "The ten entry points with the fewest contacts in the range; open entries "
                "without contacts show at 0.",
                query(f"bottomk(10, sum by (entry_id) ({in_range}))", "{{entry_id}}"),
                "short",
            ).thresholds(thresholds((None, WARN)))
        )
        .with_row(builder.Row("Buildings (sites) and administrations"))
        .with_panel(
            bars(
                "Contacts per site",
                "Contacts in the range at each building, all its entry points together.",
                query(by_entry_label("site_id"), "{{site_id}}"),
                "short",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        .with_panel(
            bars(
                "Contacts per administration",
                "Contacts in the range at the entry points each administration runs.",
                query(by_entry_label("administration"), "{{administration}}"),
                "short",
            ).thresholds(thresholds((None, NEUTRAL)))
        )
        # A "Desks" row (waiting and service times per centre, from the desk tickets) goes
        # here, after the sites.
    )


def pipeline_health() -> builder.Dashboard:
    """Pipeline health: HTTP, consumers, outbox, dead letters, handler latency."""

    def http(matchers: str = "") -> str:
        return f'kanalhub_http_requests_total{{service=~"$service"{matchers}}}'

    server_errors = http(',status=~"5.."')
    client_errors = http(',status=~"4.."')
    service = '{service=~"$service"}'
    return (
        new_dashboard(
            "kanalhub-pipeline",
            "Pipeline health",
            "Is the hub healthy: HTTP traffic, errors and latency, consumer lag, outbox, dead "
            "letters and handler latency, per service.",
        )
        .with_variable(service_variable())
        .with_row(builder.Row("Services"))
        .with_panel(
            bars(
                "Up",
                "1 when Prometheus scraped the service's /metrics; 0 is the ServiceDown alert.",
                query('up{job="kanalhub",service=~"$service"}', "{{service}}"),
                "none",
            )
            .thresholds(thresholds((None, BELOW), (1, GOOD)))
            .span(8)
            .min(0)
            .max(1)
        )
        .with_panel(
            bars(
                "Dependencies reachable",
                "1 when the service's last readiness probe reached Redis / Kafka.",
                query(f"kanalhub_dependency_up{service}", "{{service}} {{dependency}}"),
                "none",
            )
            .thresholds(thresholds((None, BELOW), (1, GOOD)))
            .span(16)
            .min(0)
            .max(1)
        )
        .with_row(builder.Row("HTTP"))
        .with_panel(
            graph(
                "Requests per second",
                "HTTP requests answered, per service.",
                query(f"sum by (service) (rate({http()}[$__rate_interval]))", "{{service}}"),
            )
            .unit("reqps")
            .span(8)
        )
        .with_panel(
            graph(
                "Server errors (5xx ratio)",
                "Share of requests answered with a 5xx status, per service (0 when none).",
                query(
                    f"(sum by (service) (rate({server_errors}[$__rate_interval])) "
                    f"or sum by (service) (rate({http()}[$__rate_interval])) * 0) / "
                    f"sum by (service) (rate({http()}[$__rate_interval]))",
                    "{{service}}",
                ),
            )
            .unit("percentunit")
            .span(8)
        )
        .with_panel(
            graph(
                "Client errors (4xx) per second",
                "Requests refused as bad input, unauthorised or not found, per status.",
                query(
                    f"sum by (service, status) (rate({client_errors}[$__rate_interval]))",
                    "{{service}} {{status}}",
                ),
            )
            .unit("reqps")
            .span(8)
        )
        .with_panel(
            graph(
                "Latency, 95th percentile",
                "HTTP request latency per service (all routes).",
                query(
                    "histogram_quantile(0.95, sum by (le, service) (rate("
                    f"kanalhub_http_request_duration_seconds_bucket{service}[$__rate_interval])))",
                    "{{service}}",
                ),
            ).unit("s")
        )
        .with_panel(
            graph(
                "Slowest routes, 95th percentile",
                "The five routes with the highest 95th-percentile latency.",
                query(
                    "topk(5, histogram_quantile(0.95, sum by (le, service, method, route) (rate("
                    f"kanalhub_http_request_duration_seconds_bucket{service}[$__rate_interval]))))",
                    "{{service}} {{method}} {{route}}",
                ),
            ).unit("s")
        )
        .with_row(builder.Row("Events"))
        .with_panel(
            graph(
                "Consumer lag",
                "Records between each consumer group's position and the end of the topic.",
                query(
                    f"sum by (service, topic) (kanalhub_consumer_lag{service})",
                    "{{service}} ← {{topic}}",
                ),
            ).unit("short")
        )
        .with_panel(
            graph(
                "Outbox depth",
                "Events stored but not yet acknowledged by Kafka, and the oldest one's age.",
                query(f"kanalhub_outbox_depth{service}", "{{service}} depth"),
                query(
                    f"kanalhub_outbox_oldest_age_seconds{service}",
                    "{{service}} oldest (s)",
                    ref_id="B",
                ),
            ).unit("short")
        )
        .with_panel(
            graph(
                "Events consumed per second",
                "By service and outcome (handled, duplicate, deadlettered).",
                query(
                    "sum by (service, outcome) (rate(kanalhub_events_consumed_total"
                    f"{service}[$__rate_interval]))",
                    "{{service}} {{outcome}}",
                ),
            ).unit("ops")
        )
        .with_panel(
            graph(
                "Events published per second",
                "Events the outbox relays published and Kafka acknowledged, per topic.",
                query(
                    "sum by (service, topic) (rate(kanalhub_events_published_total"
                    f"{service}[$__rate_interval]))",
                    "{{service}} → {{topic}}",
                ),
            ).unit("ops")
        )
        .with_panel(
            graph(
                "Dead-lettered events",
                "Events sent to kanalhub.deadletter.v1 over the time range, by reason; any "
                "growth raises the DeadLetterGrowing alert.",
                query(
                    "sum by (service, topic, reason) (increase(kanalhub_events_deadlettered_total"
                    f"{service}[$__range]))",
                    "{{service}} {{topic}} {{reason}}",
                ),
            ).unit("short")
        )
        .with_panel(
            graph(
                "Handler latency, 95th percentile",
                "Time a consumer spends on one event, dedupe and storage included.",
                query(
                    "histogram_quantile(0.95, sum by (le, service) (rate("
                    f"kanalhub_handler_duration_seconds_bucket{service}[$__rate_interval])))",
                    "{{service}}",
                ),
            ).unit("s")
        )
    )


DASHBOARDS: Final[dict[str, Callable[[], builder.Dashboard]]] = {
    "channel-shift.json": channel_shift,
    "kvik-operations.json": kvik_operations,
    "mobile-citizen-service.json": mobile_service,
    "buildings-and-entry-points.json": buildings,
    "pipeline-health.json": pipeline_health,
}
"""File name under ``deploy/grafana/dashboards/`` -> the function building that dashboard."""


def render(name: str) -> str:
    """The JSON text of one dashboard, as checked in (stable key order, trailing newline)."""
    document = DASHBOARDS[name]().build()
    # Stable panel ids in grid order (links to a panel, "view panel", library panels use them).
    for number, panel in enumerate(document.panels or [], start=1):
        panel.id_val = number
    return json.dumps(document, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def write(root: Path = Path()) -> list[Path]:
    """Write every dashboard under ``root/deploy/grafana/dashboards``; returns the paths."""
    folder = root / DASHBOARD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DASHBOARDS:
        path = folder / name
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale(root: Path = Path()) -> list[str]:
    """Dashboard files under ``root`` that are missing or differ from the generated JSON."""
    folder = root / DASHBOARD_DIR
    return [
        name
        for name in DASHBOARDS
        if not (folder / name).is_file()
        or (folder / name).read_text(encoding="utf-8") != render(name)
    ]


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards (or, with ``--check``, list the stale ones); the exit status."""
    parser = argparse.ArgumentParser(description="Regenerate deploy/grafana/dashboards/*.json.")
    parser.add_argument("--root", type=Path, default=Path(), help="the repository root")
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ; exit 1 if any"
    )
    args = parser.parse_args(argv)
    if args.check:
        differing = stale(args.root)
        for name in differing:
            print(f"out of date: {name} (run `make dashboards`)")
        return 1 if differing else 0
    for path in write(args.root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
