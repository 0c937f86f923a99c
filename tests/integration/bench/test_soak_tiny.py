"""The soak runs end to end in its tiny mode (20 s), so it cannot rot (no timing claims)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.bench]

REPO = Path(__file__).resolve().parents[3]


def test_tiny_soak_writes_a_slope_per_service_and_for_valkey(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--tiny", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "soak-latest.json").read_text())
    assert report["suite"] == "soak"
    assert report["rate"]["max_rate_source"].startswith("measured in this run")
    assert report["rate"]["target_events_per_s"] == report["rate"]["max_events_per_s"] / 2
    assert report["rate"]["events_sent"] > 0
    assert len(report["series"]) >= 2
    series = {row["series"]: row for row in report["results"]}
    for name in ("registry", "kvik", "mobile", "metrics"):
        assert series[f"{name} RSS"]["level_bytes"] > 0
    assert series["valkey used_memory"]["level_bytes"] > 0
    assert all(isinstance(row["flat"], bool) for row in report["results"])
    assert "kanalhub soak" in run.stdout
