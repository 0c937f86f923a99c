"""Small counts on an open dashboard page: counts below the threshold are shown as ``<N`` and
shares built on fewer contacts are not shown; a protected page shows every figure as it is
(``KANALHUB_METRICS_PUBLIC_MIN_COUNT``, docs/security.md "Public surfaces")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.contracts import EventType, HelpChannel
from services.plumbing.settings import HubSettings
from tests.integration.metrics.builders import session
from tests.integration.metrics.conftest import Metrics, running_metrics
from tests.integration.metrics.page_dom import PageRows
from tests.unit.contracts.samples import ENTRY_ID

pytestmark = pytest.mark.integration


async def _page_after_four_sessions(metrics: Metrics, **headers: Any) -> PageRows:
    """Three KVIK sessions in Valby (two alone, one with video help) and one in Nørrebro,
    counted; the page as an anonymous visitor (or with ``headers``) sees it."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    for help_channel, district in [
        (HelpChannel.NONE, "valby"),
        (HelpChannel.NONE, "valby"),
        (HelpChannel.VIDEO, "valby"),
        (HelpChannel.NONE, "norrebro"),
    ]:
        await metrics.publish(
            session(EventType.KVIK_SESSION_COMPLETED, at=now, help=help_channel, district=district)
        )
    await metrics.wait_handled(4)
    response = await metrics.client.get("/", params={"lang": "en"}, headers=headers)
    assert response.status_code == 200, response.text
    page = PageRows()
    page.feed(response.text)
    return page


async def test_an_open_page_withholds_counts_and_shares_below_the_threshold(
    hub_settings: HubSettings,
) -> None:
    async with running_metrics(hub_settings, public_page="open", public_min_count=3) as metrics:
        page = await _page_after_four_sessions(metrics)
    valby, norrebro = page.row("data-district", "valby"), page.row("data-district", "norrebro")
    # Valby's three contacts reach the threshold of 3; Nørrebro's one does not.
    assert (valby["data-total"], valby["data-share"]) == ("3", f"{2 / 3:.4f}")
    assert (norrebro["data-total"], norrebro["data-share"], norrebro["data-headline"]) == (
        "<3",
        "",
        "",
    )
    # KVIK's channel total (4) is shown; the phone channel's 0 contacts are "<3".
    assert page.row("data-channel", "kvik")["data-total"] == "4"
    assert page.row("data-channel", "phone")["data-total"] == "<3"


async def test_an_open_page_with_the_production_threshold_shows_no_figure_of_four_contacts(
    hub_settings: HubSettings,
) -> None:
    async with running_metrics(hub_settings, public_page="open", public_min_count=10) as metrics:
        page = await _page_after_four_sessions(metrics)
    valby = page.row("data-district", "valby")
    assert (valby["data-total"], valby["data-share"], valby["data-headline"]) == ("<10", "", "")
    assert page.texts["headline-share"].strip() == "no data"
    assert page.texts["kvik-completed"].strip() == "<10"
    entry = page.row("data-entry", ENTRY_ID)
    assert (entry["data-kvik"], entry["data-total"], entry["data-per-open-hour"]) == (
        "<10",
        "<10",
        "",
    )


async def test_a_protected_page_shows_every_figure_whatever_the_threshold(
    hub_settings: HubSettings,
) -> None:
    async with running_metrics(
        hub_settings, public_page="protected", public_min_count=10
    ) as metrics:
        page = await _page_after_four_sessions(metrics, **metrics.reader)
    valby = page.row("data-district", "valby")
    assert (valby["data-total"], valby["data-share"]) == ("3", f"{2 / 3:.4f}")
    assert page.texts["headline-share"].strip() == "75.0 %"
    assert page.texts["kvik-completed"].strip() == "4"
    assert page.row("data-entry", ENTRY_ID)["data-total"] == "4"
