"""The benchmark harness runs end to end at a tiny size, so it cannot rot (no timing claims)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.bench]

REPO = Path(__file__).resolve().parents[3]


def test_tiny_bench_writes_a_report_per_suite_with_every_figure(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--tiny", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "plumbing-latest.json").read_text())
    assert report["machine"]["cores"] >= 1
    assert report["size"] == {"events": 200, "tiny": True}
    names = [result["name"] for result in report["results"]]
    assert len(names) == 4
    for result in report["results"]:
        assert result["figures"], result["name"]
        assert all(value > 0 for value in result["figures"].values()), result
    consumer = next(r for r in report["results"] if r["name"].startswith("consumer loop"))
    assert consumer["baseline"]["bare_aiokafka_consume_events_per_s"] > 0
    assert set(consumer["figures"]) == {
        "per_event_tx_events_per_s",
        "per_event_tx_ratio_to_bare",
        "per_batch_tx_events_per_s",
        "per_batch_tx_ratio_to_bare",
    }
    assert "plumbing benchmarks" in run.stdout
    metrics = json.loads((tmp_path / "metrics-latest.json").read_text())
    assert metrics["size"] == {"events": 200, "tiny": True, "raw_contacts": 2000}
    by_name = {result["name"]: result for result in metrics["results"]}
    assert set(by_name) == {
        "metrics aggregation (events -> rollups)",
        "metrics Redis memory per million events",
        "share over a year, all districts",
    }
    for result in metrics["results"]:
        assert all(value > 0 for value in result["figures"].values()), result
    aggregation = by_name["metrics aggregation (events -> rollups)"]
    assert aggregation["baseline"]["bare_aiokafka_consume_events_per_s"] > 0
    assert "metrics benchmarks" in run.stdout
