"""The built-in dashboard page, opened in headless Chromium against a served metrics app: the
figures it shows equal the API's, and a screenshot is taken."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from services.contracts import EventType, HelpChannel, new_event
from services.contracts.geography import COPENHAGEN
from services.hub.embedded import free_port
from services.metrics.app import create_app
from services.metrics.domain import local_day
from services.metrics.settings import MetricsSettings
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from tests.integration.metrics.builders import payload, session
from tests.integration.metrics.conftest import MANAGER
from tests.integration.metrics.page_dom import PageRows
from tests.support.tokens import auth
from tests.unit.contracts.samples import ENTRY_ID

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="headless Chromium missing: `make tools` installs it (apt-get install chromium)",
    ),
]

SCREENSHOT_COPY = os.environ.get("KANALHUB_SCREENSHOT_TO")
"""Where to copy the screenshot too (the README's picture: ``docs/images/dashboard.png``)."""


@pytest.fixture
async def served(hub_settings: HubSettings) -> AsyncIterator[str]:
    """The metrics app served over HTTP on a free port (Chromium needs a real server)."""
    port = free_port()
    app = create_app(MetricsSettings(hub=hub_settings, port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            if server.started and (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
    yield base
    server.should_exit = True
    await task


async def _chromium(*args: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()[-2000:]
    return out


async def _wait_handled(settings: HubSettings, base: str, count: int) -> None:
    headers = auth(settings, "metrics:read", subject=MANAGER)
    today = dt.datetime.now(dt.UTC).date()
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for _ in range(200):
            share = (await client.get("/share", params={"period": "month", "date": today})).json()
            if share["total"] >= count:
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the events were not counted in time")


async def test_the_page_shows_the_apis_figures_in_headless_chromium(
    served: str, hub_settings: HubSettings, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    producer = EventProducer(hub_settings, client_id="test-page")
    await producer.start()
    try:
        for help_channel, district in [
            (HelpChannel.NONE, "valby"),
            (HelpChannel.NONE, "valby"),
            (HelpChannel.VIDEO, "valby"),
            (HelpChannel.NONE, "norrebro"),
        ]:
            await producer.publish(
                session(
                    EventType.KVIK_SESSION_COMPLETED, at=now, help=help_channel, district=district
                )
            )
    finally:
        await producer.stop()
    await _wait_handled(hub_settings, served, 4)

    dom = await _chromium("--dump-dom", "--virtual-time-budget=3000", f"{served}/?lang=en")
    page = PageRows()
    page.feed(dom.decode())
    shown = {row["data-district"]: row["data-share"] for row in page.rows if "data-district" in row}

    headers = auth(hub_settings, "metrics:read", subject=MANAGER)
    async with httpx.AsyncClient(base_url=served, headers=headers) as client:
        coverage = (await client.get("/coverage")).json()
        funnel = (
            await client.get(
                "/kvik/funnel",
                params={
                    "period": "day",
                    "date": now.astimezone(dt.timezone(dt.timedelta(hours=1))).date(),
                },
            )
        ).json()
        usage = (
            await client.get(
                "/usage/entries", params={"period": "day", "date": local_day(now).isoformat()}
            )
        ).json()
        # every contact of the test is today: the day's figures are the page window's figures
        districts = (
            await client.get(
                "/share/districts", params={"period": "day", "date": local_day(now).isoformat()}
            )
        ).json()
        forecast = (await client.get("/forecast")).json()
    expected = {
        d["district"]: "" if d["share"] is None else f"{d['share']:.4f}"
        for d in coverage["districts"]
    }
    assert shown == expected
    assert shown["valby"] == f"{2 / 3:.4f}"
    assert page.texts["kvik-completed"].strip() == str(funnel["completed"])
    assert re.search(r"Digital share of general needs by district", dom.decode())
    # The headline is the general-needs share, with the target and deadline of the settings;
    # the overall and special-needs shares beside it, and each district's outlook.
    headline = {
        row["data-district"]: row["data-headline"] for row in page.rows if "data-district" in row
    }
    assert headline == {
        d["district"]: "" if d["headline_share"] is None else f"{d['headline_share']:.4f}"
        for d in districts["districts"]
    }
    outlooks = {
        row["data-district"]: row["data-outlook"] for row in page.rows if "data-district" in row
    }
    assert outlooks == {d["district"]: d["outlook"] for d in forecast["districts"]}
    assert "Target 80 % by 2029-12-31" in page.texts["target-by"]
    assert page.texts["headline-share"].strip() == "75.0 %"  # 3 of 4 sessions, all general
    assert 'lang="en"' in dom.decode()
    # The usage table: every contact of the test is today, so the page's window (the last 28
    # days) and the API's day hold the same contacts per entry point.
    usage_shown = {
        row["data-entry"]: (row["data-kvik"], row["data-total"])
        for row in page.rows
        if "data-entry" in row
    }
    assert usage_shown == {
        e["entry_id"]: (str(e["channels"]["kvik"]["total"]), str(e["contacts"]))
        for e in usage["entries"]
    }
    assert usage_shown[ENTRY_ID] == ("4", "4")

    shot = tmp_path / "dashboard.png"
    await _chromium(
        f"--screenshot={shot}",
        "--window-size=1280,1700",
        "--virtual-time-budget=3000",
        f"{served}/?lang=en",
    )
    assert shot.read_bytes().startswith(b"\x89PNG")
    if SCREENSHOT_COPY:
        shutil.copyfile(shot, SCREENSHOT_COPY)


async def test_the_page_shows_the_desk_times_of_the_api(
    served: str, hub_settings: HubSettings
) -> None:
    # Yesterday at 13:00 in Copenhagen: every ticket lies in one local day, inside the page's
    # window, whatever the hour the test runs (an hour before it, "an hour ago" in UTC was still
    # yesterday in Copenhagen while "today" was not: a clean-clone run at 23:30 UTC failed).
    yesterday = local_day(dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
    now = dt.datetime.combine(yesterday, dt.time(13), tzinfo=COPENHAGEN).astimezone(dt.UTC)
    producer = EventProducer(hub_settings, client_id="test-page-desk")
    await producer.start()
    try:
        for number, (wait, outcome) in enumerate(
            [(12, "served"), (25, "served"), (8, "no_show")], start=1
        ):
            issued = now - dt.timedelta(minutes=60)
            called = issued + dt.timedelta(minutes=wait)
            served_ticket = outcome == "served"
            data = payload(
                EventType.METRICS_DESK_TICKET_ENDED,
                ticket_id=f"page-{number}",
                issued_at=issued,
                called_at=called,
                served_at=called + dt.timedelta(minutes=1) if served_ticket else None,
                ended_at=called + dt.timedelta(minutes=9 if served_ticket else 2),
                staff_id="staff-a1b2c3d4" if served_ticket else None,
                outcome=outcome,
            )
            await producer.publish(
                new_event(EventType.METRICS_DESK_TICKET_ENDED, data, source="/kanalhub/metrics")
            )
    finally:
        await producer.stop()

    headers = auth(hub_settings, "metrics:read", subject=MANAGER)
    day = local_day(now).isoformat()
    async with httpx.AsyncClient(base_url=served, headers=headers) as client:
        for _ in range(200):
            times = await client.get("/desk/times", params={"period": "day", "date": day})
            centres = times.json()["centres"]
            if centres and centres[0]["total"]["served"] + centres[0]["total"]["no_shows"] == 3:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the tickets were not counted in time: {times.text}")

    dom = await _chromium("--dump-dom", "--virtual-time-budget=3000", f"{served}/?lang=en")
    page = PageRows()
    page.feed(dom.decode())
    shown = {
        row["data-centre"]: (
            row["data-served"],
            row["data-no-shows"],
            row["data-wait-p50"],
            row["data-wait-p90"],
        )
        for row in page.rows
        if "data-centre" in row
    }

    def seconds(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    assert shown == {
        c["entry_id"]: (
            str(c["total"]["served"]),
            str(c["total"]["no_shows"]),
            seconds(c["total"]["waiting"]["p50_seconds"]),
            seconds(c["total"]["waiting"]["p90_seconds"]),
        )
        for c in centres
    }
    assert shown[centres[0]["entry_id"]][:2] == ("2", "1")
    assert "Waiting at the desks" in dom.decode()
