"""The simulator's live kiosks (``kanalhub simulate --kiosks``) register, post sessions and
upload a backlog after being offline, against a running kvik app."""

from __future__ import annotations

import random
from typing import Any

import pytest

from services.hub.simulator.driver import Endpoints, Simulator
from services.hub.simulator.live import Tally, register_fleet, run_live_kiosks, step
from tests.integration.kvik.conftest import ENTRY_ID, SERVICES, Kvik, kvik

pytestmark = pytest.mark.integration

__all__ = ["kvik"]  # the kvik app fixture, shared with the kvik service's tests

POINT = {"entry_id": ENTRY_ID, "district": "amager-vest", "services": list(SERVICES)}


class _OneKvikPoint(Simulator):
    """The simulator with the registry's answer given (the test runs only the kvik app)."""

    async def kvik_points(self) -> list[dict[str, Any]]:
        return [POINT]


async def test_live_kiosks_post_sessions_and_upload_their_backlog(kvik: Kvik) -> None:
    simulator = Simulator(kvik.hub, Endpoints(kvik="http://kvik"), http=kvik.client)
    fleet = await register_fleet(simulator, [POINT], 2)
    assert [live.kiosk.kiosk_id for live in fleet] == [f"sim-{ENTRY_ID}-01", f"sim-{ENTRY_ID}-02"]
    rng, tally, clock = random.Random(7), Tally(), iter(range(1000))
    live = fleet[0]
    live.offline_until = 3  # offline for the first three sessions of the fake clock
    for _ in range(5):
        await step(simulator, live, rng, tally, 0.0, lambda: float(next(clock)))
    assert (tally.uploaded, tally.posted, tally.refused) == (3, 2, 0)
    assert live.backlog == []
    await simulator.close()
    assert not kvik.client.is_closed  # a client handed in is the caller's to close


async def test_a_live_run_posts_at_its_rate_and_every_session_is_taken(kvik: Kvik) -> None:
    simulator = _OneKvikPoint(kvik.hub, Endpoints(kvik="http://kvik"), http=kvik.client)
    tally = await run_live_kiosks(simulator, kiosks=3, rate=20, duration=1.5, offline_chance=0.2)
    # ~30 sessions expected (20/s for 1.5 s; fewer on a loaded machine, never far more); each
    # one posted at once or uploaded at the end.
    assert 3 <= tally.posted + tally.uploaded <= 80
    assert tally.refused == 0
