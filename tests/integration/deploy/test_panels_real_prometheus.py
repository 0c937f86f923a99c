"""Every Grafana panel's PromQL returns series from a real Prometheus scraping a running hub.

The embedded hub (``kanalhub run``) starts on free ports; the ``prometheus`` binary (Debian
package) scrapes its four services every second with the scrape job of
``deploy/prometheus/prometheus.yml`` and loads the alert rules of ``deploy/prometheus/rules``.
Traffic is real: HTTP calls to the services and events published straight to the contract
topics with the project's producer, so the services count them as they count production
events. Then each panel's query, taken from the checked-in dashboard JSON with the dashboard
variables at their defaults, goes through Prometheus' HTTP API and must return at least one
series - a typo in a metric or label name fails here.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from services.contracts import (
    Channel,
    ContactMode,
    ContactRecorded,
    ContactSource,
    CountReported,
    District,
    EventType,
    HelpAnswered,
    HelpChannel,
    HelpRequested,
    KioskOnline,
    KioskRegistered,
    Payload,
    Topic,
    new_event,
)
from services.hub.embedded import free_port
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from tests.unit.contracts.samples import sample_payload
from tests.unit.deploy.dashboard_queries import PanelQuery, all_queries, dashboard_files, load
from tests.unit.deploy.support import DEPLOY, ROOT
from tests.unit.deploy.tools import prometheus_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ("registry", "kvik", "mobile", "metrics")
CPH = ZoneInfo("Europe/Copenhagen")
# All traffic happens in this district (plus some elsewhere), so the panels must also return
# data with the district variable set to it - the variable's values are the label values.
DISTRICT = District.AMAGER_VEST
ENTRY = "entry-kvik-sundby-bibliotek"
HUB_READY_WITHIN = 90.0  # generous: the four services import slowly on a loaded machine
# After the traffic, how long a query may take to show data (consumers, then a 1 s scrape).
DATA_WITHIN = 20.0
SCRAPE_TOKEN = "panels-scrape-6b1f0c9e2d4a8b7c5e3f1a0d9c8b7a6f"
"""Prometheus' token for /metrics (the hub runs with KANALHUB_PROMETHEUS_AUTH=bearer)."""


@dataclass
class Stack:
    """The running hub and the Prometheus scraping it."""

    prometheus: str
    hub_ports: dict[str, int]
    data_deadline: float

    def query(self, expr: str) -> dict[str, Any]:
        """One instant query through the HTTP API; the decoded answer."""
        answer = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = answer.json()
        return body


def _hub_env(tmp: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANALHUB_")}
    env.update(
        {
            "KANALHUB_EMBEDDED_DATA_DIR": str(tmp / "var"),
            "KANALHUB_EMBEDDED_BROKER_PORT": str(ports["broker"]),
            "KANALHUB_EMBEDDED_VALKEY_PORT": str(ports["valkey"]),
            **{f"KANALHUB_{name.upper()}_PORT": str(ports[name]) for name in SERVICES},
            "COLUMNS": "200",
            # /metrics protected as in production, so the scrape config's token is tested too
            "KANALHUB_PROMETHEUS_AUTH": "bearer",
            "KANALHUB_PROMETHEUS_TOKEN": SCRAPE_TOKEN,
        }
    )
    return env


def _ready(ports: dict[str, int]) -> bool:
    return all(_answers(f"http://127.0.0.1:{ports[name]}/readyz") for name in SERVICES)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _prometheus_config(
    ports: dict[str, int], prometheus_port: int, scrape_token: Path
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, scraping this hub every second with the scrape token
    read from ``scrape_token`` (compose mounts it at /run/secrets/scrape_token)."""
    with (DEPLOY / "prometheus" / "prometheus.yml").open(encoding="utf-8") as handle:
        config: dict[str, Any] = yaml.safe_load(handle)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(DEPLOY / "prometheus" / rule) for rule in config["rule_files"]]
    for job in config["scrape_configs"]:
        if job["job_name"] == "kanalhub":
            for group in job["static_configs"]:
                group["targets"] = [f"127.0.0.1:{ports[group['labels']['service']]}"]
            job["authorization"]["credentials_file"] = str(scrape_token)
        else:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{prometheus_port}"]}]
    return config


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals, within: float) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Hub + Prometheus, fed with traffic; stopped at the end of the module."""
    prometheus = prometheus_tool("prometheus")
    tmp = tmp_path_factory.mktemp("panels")
    ports = {name: free_port() for name in ("broker", "valkey", *SERVICES)}
    hub_log = tmp / "hub.log"
    with hub_log.open("wb") as sink:
        hub = subprocess.Popen(
            [sys.executable, "-m", "services.hub.cli", "run"],
            cwd=ROOT,
            env=_hub_env(tmp, ports),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    prom_port = free_port()
    config = tmp / "prometheus.yml"
    scrape_token = tmp / "scrape_token"
    scrape_token.write_text(SCRAPE_TOKEN, encoding="utf-8")
    config.write_text(
        yaml.safe_dump(_prometheus_config(ports, prom_port, scrape_token)), encoding="utf-8"
    )
    prom_log = tmp / "prometheus.log"
    with prom_log.open("wb") as sink:
        prom = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        while not _ready(ports):
            assert hub.poll() is None, f"the hub exited:\n{hub_log.read_text()[-4000:]}"
            assert prom.poll() is None, f"prometheus exited:\n{prom_log.read_text()[-4000:]}"
            assert time.monotonic() - started < HUB_READY_WITHIN, hub_log.read_text()[-4000:]
            time.sleep(0.5)
        url = f"http://127.0.0.1:{prom_port}"
        tokens = tmp / "var" / "dev-tokens.env"  # written right after the readiness check
        deadline = time.monotonic() + 15
        while not (_answers(f"{url}/-/ready") and tokens.is_file()):
            assert prom.poll() is None, f"prometheus exited:\n{prom_log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, (
                f"prometheus or the token file not ready: {prom_log.read_text()[-4000:]}"
            )
            time.sleep(0.2)
        token = _token(tokens)
        bootstrap = f"127.0.0.1:{ports['broker']}"
        # Two rounds a few scrapes apart, so rates and increases see the counters move.
        for round_number in range(2):
            _http_traffic(ports, token, round_number)
            asyncio.run(_publish_events(bootstrap, round_number))
            if round_number == 0:
                time.sleep(3)
        yield Stack(url, ports, time.monotonic() + DATA_WITHIN)
    finally:
        _stop(prom, signal.SIGTERM, 10)
        _stop(hub, signal.SIGINT, 30)


def _token(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name == "KANALHUB_TOKEN_ALL_ROLES":
            return value.strip().strip("'\"")
    raise AssertionError(f"no all-roles token in {path}")


def _http_traffic(ports: dict[str, int], token: str, round_number: int) -> None:
    """Successful calls, client errors (404, 401) and a write that publishes an event."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=10) as client:
        for name in SERVICES:
            base = f"http://127.0.0.1:{ports[name]}"
            for _ in range(3):
                assert client.get(f"{base}/openapi.json").status_code == 200
        registry = f"http://127.0.0.1:{ports['registry']}"
        assert client.get(f"{registry}/services").status_code == 200
        assert client.get(f"{registry}/sites/no-such-site").status_code == 404
        created = client.post(
            f"{registry}/services",
            json={"code": f"panel_test_{round_number}", "name": "Panel test"},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        # Refused requests to the other services (no token, unknown id): any 4xx will do.
        kvik = f"http://127.0.0.1:{ports['kvik']}"
        assert 400 <= client.get(f"{kvik}/kiosks/kiosk-x").status_code < 500
        mobile = f"http://127.0.0.1:{ports['mobile']}"
        assert 400 <= client.get(f"{mobile}/visits/no-such-visit").status_code < 500


def _validate(payload: Payload, **changes: object) -> Payload:
    """``payload`` with ``changes``, validated again."""
    return type(payload).model_validate({**payload.model_dump(), **changes})


def _kvik_events(now: datetime, round_number: int) -> list[tuple[EventType, Payload]]:
    """Two kiosks (one online), five sessions of every outcome and help, two help requests."""
    events: list[tuple[EventType, Payload]] = []
    kiosk = {"entry_id": ENTRY, "district": DISTRICT, "at": now}
    if round_number == 0:
        for kiosk_id in ("kiosk-panel-01", "kiosk-panel-02"):
            events.append(
                (EventType.KVIK_KIOSK_REGISTERED, KioskRegistered(kiosk_id=kiosk_id, **kiosk))
            )
        events.append(
            (EventType.KVIK_KIOSK_ONLINE, KioskOnline(kiosk_id="kiosk-panel-01", **kiosk))
        )
    outcomes: list[tuple[EventType, HelpChannel]] = [
        (EventType.KVIK_SESSION_COMPLETED, HelpChannel.NONE),
        (EventType.KVIK_SESSION_COMPLETED, HelpChannel.NONE),
        (EventType.KVIK_SESSION_COMPLETED, HelpChannel.VIDEO),
        (EventType.KVIK_SESSION_ABANDONED, HelpChannel.NONE),
        (EventType.KVIK_SESSION_REFERRED, HelpChannel.PHONE),
    ]
    for event_type, help_channel in outcomes:
        changes: dict[str, object] = {
            "session_id": str(uuid4()),
            "kiosk_id": "kiosk-panel-01",
            "entry_id": ENTRY,
            "district": DISTRICT,
            "started_at": now - timedelta(minutes=6),
            "ended_at": now - timedelta(minutes=1),
            "help": help_channel,
        }
        events.append((event_type, _validate(sample_payload(event_type), **changes)))
    for channel, wait in ((HelpChannel.VIDEO, 40), (HelpChannel.PHONE, 95)):
        help_fields: dict[str, object] = {
            "help_request_id": f"help-{uuid4().hex[:8]}",
            "kiosk_id": "kiosk-panel-01",
            "entry_id": ENTRY,
            "session_id": str(uuid4()),
            "channel": channel,
            "requested_at": now - timedelta(minutes=3),
        }
        events.append((EventType.KVIK_HELP_REQUESTED, HelpRequested(**help_fields)))
        events.append(
            (
                EventType.KVIK_HELP_ANSWERED,
                HelpAnswered(
                    **help_fields,
                    answered_at=now - timedelta(minutes=3) + timedelta(seconds=wait),
                ),
            )
        )
    return events


def _mobile_events(now: datetime, round_number: int) -> list[tuple[EventType, Payload]]:
    """In two districts: a visit planned and completed with three contacts, one cancelled."""
    events: list[tuple[EventType, Payload]] = []
    for district in (DISTRICT, District.VALBY):
        visit_id = f"visit-panel-{district.value}-{round_number}"
        visit = {
            "visit_id": visit_id,
            "site_id": None,
            "district": district,
            "starts_at": now - timedelta(hours=3),
            "ends_at": now - timedelta(minutes=5),
        }
        events.append(
            (
                EventType.MOBILE_VISIT_PLANNED,
                _validate(sample_payload(EventType.MOBILE_VISIT_PLANNED), **visit),
            )
        )
        for mode, onboarded in (
            (ContactMode.ASSISTED, True),
            (ContactMode.ASSISTED, False),
            (ContactMode.SELF_SERVICE, False),
        ):
            contact = ContactRecorded(
                contact_id=f"contact-{uuid4().hex[:12]}",
                visit_id=visit_id,
                district=district,
                service="digital_signature",
                mode=mode,
                onboarded_to_digital=onboarded,
                at=now - timedelta(hours=1),
            )
            events.append((EventType.MOBILE_CONTACT_RECORDED, contact))
        events.append(
            (
                EventType.MOBILE_VISIT_COMPLETED,
                _validate(sample_payload(EventType.MOBILE_VISIT_COMPLETED), **visit),
            )
        )
        cancelled = {
            **visit,
            "visit_id": f"{visit_id}-cancelled",
            "starts_at": now + timedelta(days=2),
            "ends_at": now + timedelta(days=2, hours=2),
        }
        events.append(
            (
                EventType.MOBILE_VISIT_CANCELLED,
                _validate(sample_payload(EventType.MOBILE_VISIT_CANCELLED), **cancelled),
            )
        )
    return events


def _count_events(today: date, round_number: int) -> list[tuple[EventType, Payload]]:
    """28 days of counts from the digital platform and the contact centre, the general-needs
    digital share rising one point a day from 50 % to 77 % (so the trend reaches 80 % within
    days), and special-needs calls beside them."""
    if round_number > 0:
        return []
    events: list[tuple[EventType, Payload]] = []
    for district in (DISTRICT, District.NORREBRO):
        for days_ago in range(28):
            day = today - timedelta(days=days_ago)
            digital = 50 + (27 - days_ago)
            for source, channel, self_service, assisted in (
                (ContactSource.DIGITAL_PLATFORM, Channel.DIGITAL, digital, 0),
                (ContactSource.CONTACT_CENTRE, Channel.PHONE, 0, 100 - digital),
            ):
                count = CountReported(
                    source=source,
                    day=day,
                    district=district,
                    service="change_of_address",
                    channel=channel,
                    self_service=self_service,
                    assisted=assisted,
                )
                events.append((EventType.METRICS_COUNT_REPORTED, count))
            # special-needs contacts at the phone (home care is special needs in the seed
            # catalogue): the special-needs share panels need them
            special = CountReported(
                source=ContactSource.CONTACT_CENTRE,
                day=day,
                district=district,
                service="home_care",
                channel=Channel.PHONE,
                self_service=1,
                assisted=20,
            )
            events.append((EventType.METRICS_COUNT_REPORTED, special))
    return events


async def _publish_events(bootstrap: str, round_number: int) -> None:
    """Publish one round of events straight to their contract topics, plus one undecodable
    record that the consumers of the kvik topic must dead-letter."""
    settings = HubSettings(kafka_bootstrap=bootstrap, topic_suffix="")
    producer = EventProducer(settings, client_id="panel-test")
    await producer.start()
    try:
        now = datetime.now(UTC)
        today = now.astimezone(CPH).date()
        events = [
            (EventType.REGISTRY_ENTRY_UPSERTED, sample_payload(EventType.REGISTRY_ENTRY_UPSERTED)),
            *_kvik_events(now, round_number),
            *_mobile_events(now, round_number),
            *_count_events(today, round_number),
        ]
        for event_type, payload in events:
            service = event_type.split(".")[2]
            await producer.publish(new_event(event_type, payload, source=f"/kanalhub/{service}"))
        await producer.send(settings.topic(Topic.KVIK), b"panel-test", b"{not json")
    finally:
        await producer.stop()


# ---------------------------------------------------------------------------------------------


def _ask_until_data(stack: Stack, expr: str) -> dict[str, Any]:
    while True:
        answer = stack.query(expr)
        assert answer.get("status") == "success", f"{expr}\n{answer}"
        if answer["data"]["result"] or time.monotonic() > stack.data_deadline:
            return answer
        time.sleep(0.5)


QUERIES = all_queries()


def test_a_misspelled_metric_returns_no_series(stack: Stack) -> None:
    # The control for the panel tests: a typo is noticed, it does not silently pass.
    answer = stack.query("sum by (channel) (increase(kanalhub_contact_total[1m]))")
    assert answer["status"] == "success"
    assert answer["data"]["result"] == []


def test_prometheus_scrapes_all_four_services(stack: Stack) -> None:
    answer = _ask_until_data(stack, 'up{job="kanalhub"} == 1')
    assert {series["metric"]["service"] for series in answer["data"]["result"]} == set(SERVICES)


def test_prometheus_loads_every_alert_rule_and_evaluates_it_without_error(stack: Stack) -> None:
    rules = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    alerts = {rule["name"]: rule for group in rules for rule in group["rules"]}
    assert {"KioskOffline", "DeadLetterGrowing", "ServiceDown", "DigitalShareDropped"} <= set(
        alerts
    )
    deadline = time.monotonic() + 10
    while any(rule.get("health") == "unknown" for rule in alerts.values()):
        assert time.monotonic() < deadline, "rules were never evaluated"
        time.sleep(0.5)
        groups = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        alerts = {rule["name"]: rule for group in groups for rule in group["rules"]}
    broken = {
        name: rule.get("lastError") for name, rule in alerts.items() if rule["health"] != "ok"
    }
    assert broken == {}


def test_the_dead_letter_alert_fires_for_the_undecodable_record(stack: Stack) -> None:
    answer = _ask_until_data(stack, 'ALERTS{alertname="DeadLetterGrowing",alertstate="firing"}')
    topics = {series["metric"]["topic"] for series in answer["data"]["result"]}
    assert topics == {"kanalhub.kvik.v1"}, answer


def test_dashboard_variables_offer_the_label_values_prometheus_has(stack: Stack) -> None:
    def label_values(label: str, match: str) -> set[str]:
        answer = httpx.get(
            f"{stack.prometheus}/api/v1/label/{label}/values",
            params={"match[]": match},
            timeout=10,
        ).json()
        assert answer["status"] == "success", answer
        return set(answer["data"])

    checked = 0
    for path in dashboard_files():
        for variable in load(path)["templating"]["list"]:
            if variable["type"] == "query":
                found = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"])
                assert found, variable["query"]
                metric, label = found.groups()
                assert label_values(label, metric) >= set(SERVICES), variable["name"]
                checked += 1
            elif variable["name"] == "district":
                offered = {option.split(" : ")[1] for option in variable["query"].split(",")}
                exposed = label_values("district", '{__name__=~"kanalhub_.+"}') - {"all"}
                assert DISTRICT.value in exposed
                assert exposed <= offered, f"districts the variable lacks: {exposed - offered}"
                checked += 1
    assert checked == len(dashboard_files())  # $service on one, $district on each other


@pytest.mark.parametrize("query", QUERIES, ids=[query.name for query in QUERIES])
def test_panel_query_returns_series(stack: Stack, query: PanelQuery) -> None:
    expr = query.expanded()
    answer = _ask_until_data(stack, expr)
    result = answer["data"]["result"]
    assert result, f"no series for {query.name}:\n{expr}"
    print(
        f"{query.name}: {len(result)} series, e.g. {result[0]['metric']} = {result[0]['value'][1]}"
    )
    if "$district" in query.expr:
        # The variable's values (district slugs) must be the label values the services use.
        one = query.expanded(district=DISTRICT.value)
        answer = _ask_until_data(stack, one)
        assert answer["data"]["result"], f"no series for {query.name} in {DISTRICT}:\n{one}"
