"""Fixtures of the deployment checks."""

from __future__ import annotations

import pytest

from tests.unit.deploy.tools import prometheus_tool


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool from the Debian package ``prometheus``; ``make test`` installs it first."""
    return prometheus_tool("promtool")
