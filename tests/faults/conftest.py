"""The fault suite's hub: separate processes the test can kill and restart one by one
(``services/hub/cluster.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.hub.cluster import Cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Broker, Valkey and one replica of each service, the registry seeded with Copenhagen."""
    cluster = await Cluster.start(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()
