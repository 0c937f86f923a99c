"""The kiosk simulator's kiosks register, post sessions and upload a backlog after being
offline, against a running kvik app."""

from __future__ import annotations

import random

import pytest

from services.kvik.simulator import Tally, _step, register
from tests.integration.kvik.conftest import ENTRY_ID, SERVICES, Kvik

pytestmark = pytest.mark.integration


async def test_simulated_kiosks_post_sessions_and_upload_their_backlog(kvik: Kvik) -> None:
    points = [{"entry_id": ENTRY_ID, "services": list(SERVICES)}]
    fleet = await register(kvik.client, kvik.admin, points, 2)
    rng, tally, clock = random.Random(7), Tally(), iter(range(1000))
    kiosk = fleet[0]
    kiosk.offline_until = 3  # offline for the first three sessions of the fake clock
    for _ in range(5):
        await _step(kvik.client, kiosk, rng, tally, 0.0, lambda: float(next(clock)))
    assert (tally.uploaded, tally.posted, tally.refused) == (3, 2, 0)
    assert kiosk.backlog == []
