"""``python -m bench.run``: start the embedded broker and Valkey, run the benchmark suites, print
a table per suite and write ``bench/results/<suite>-<time>.json`` (and ``<suite>-latest.json``).

Suites: ``plumbing`` (outbox, relay, consumer loop, end to end), ``metrics`` (aggregation,
memory, share query vs SQLite), ``kvik`` (single session posts and batch upload through one
kvik service process) and ``hub`` (a year of Copenhagen through the four services as processes,
with their own broker and Valkey). ``--suite soak`` (never run by default; ``make soak``) runs
``bench.soak``: ten minutes of traffic at half the maximum rate, memory sampled every 10 s."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from rich.console import Console
from rich.table import Table

from bench import hub as hub_bench
from bench import kvik as kvik_bench
from bench import machine, plumbing
from bench import metrics as metrics_bench
from bench import soak as soak_bench
from services.hub.embedded import DEFAULT_BROKER, ValkeyProcess, free_port, make_broker
from services.plumbing.settings import Environment, HubSettings

RESULTS = Path(__file__).parent / "results"
FULL_SIZE = 20_000
TINY_SIZE = 200
RAW_CONTACTS = 1_000_000
"""Raw contacts on both sides of the share-query comparison (the issue's 1 million)."""
SUITES = ("plumbing", "metrics", "kvik", "hub")
YEAR_DAYS = 365
"""Days of Copenhagen the ``hub`` suite sends through the whole hub (3 with ``--tiny``)."""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; ``--tiny`` is the quick run ``make test`` uses (no timing claims)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a few hundred events, for tests")
    parser.add_argument("--events", type=int, help="events per benchmark (default 20,000)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--suite",
        choices=(*SUITES, "soak"),
        action="append",
        help="run only this suite (repeatable); soak runs only when named",
    )
    args = parser.parse_args(argv)
    suites = args.suite or list(SUITES)
    if "soak" in suites:
        # The soak starts its own hub and writes its own report (bench/soak.py).
        soak_code = soak_bench.main([*(["--tiny"] if args.tiny else []), "--out", str(args.out)])
        suites = [suite for suite in suites if suite != "soak"]
        if not suites:
            return soak_code
    raw_contacts = 2_000 if args.tiny else RAW_CONTACTS
    count = args.events or (TINY_SIZE if args.tiny else FULL_SIZE)
    kind = os.environ.get("KANALHUB_EMBEDDED_BROKER", DEFAULT_BROKER)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="kanalhub-bench-") as scratch:
        broker = make_broker(kind, free_port(), Path(scratch) / "broker")  # type: ignore[arg-type]
        valkey = ValkeyProcess(port=free_port(), data_dir=Path(scratch) / "valkey")
        relaxed = ValkeyProcess(
            port=free_port(), data_dir=Path(scratch) / "valkey-everysec", appendfsync="everysec"
        )
        broker.start()
        valkey.start()
        relaxed.start()
        try:
            settings = HubSettings(
                kafka_bootstrap=broker.bootstrap,
                redis_url=valkey.url,
                topic_suffix=f".bench{uuid4().hex[:8]}",
                key_prefix=f"bench{uuid4().hex[:8]}",
                topic_partitions=6,
                environment=Environment.TEST,
            ).model_copy(update=broker.client_settings())
            outcomes: dict[str, list[plumbing.Result]] = {}
            if "plumbing" in suites:
                with console.status(f"plumbing benchmarks, {count} events each"):
                    outcomes["plumbing"] = asyncio.run(
                        plumbing.run_all(settings, count, relaxed.url)
                    )
            if "metrics" in suites:
                metrics_settings = settings.model_copy(
                    update={
                        "topic_suffix": f"{settings.topic_suffix}m",
                        "key_prefix": f"{settings.key_prefix}m",
                    }
                )
                with console.status(
                    f"metrics benchmarks, {count} events, {raw_contacts:,} raw contacts"
                ):
                    outcomes["metrics"] = asyncio.run(
                        metrics_bench.run_all(metrics_settings, count, raw_contacts)
                    )
            if "kvik" in suites:
                kvik_settings = settings.model_copy(
                    update={
                        "topic_suffix": f"{settings.topic_suffix}k",
                        "key_prefix": f"{settings.key_prefix}k",
                    }
                )
                with console.status(f"kvik benchmarks, {count} sessions each"):
                    outcomes["kvik"] = asyncio.run(
                        kvik_bench.run_all(kvik_settings, count, Path(scratch))
                    )
        finally:
            relaxed.stop()
            valkey.stop()
            broker.stop()
        if "hub" in suites:
            days = 3 if args.tiny else YEAR_DAYS
            with console.status(f"{days} days of Copenhagen through the whole hub"):
                outcomes["hub"] = asyncio.run(
                    hub_bench.run_all(days, 5 if args.tiny else 100, 0.5 if args.tiny else 8.0)
                )
    host = machine.describe()
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for suite, results in outcomes.items():
        report = {
            "suite": suite,
            "started_at": datetime.now(UTC).isoformat(),
            "size": {"events": count, "tiny": args.tiny},
            "machine": host,
            "components": {"broker": kind, "valkey_appendfsync": "always"},
            "results": plumbing.as_json(results),
        }
        if suite == "metrics":
            report["size"]["raw_contacts"] = raw_contacts  # type: ignore[index]
        for result, entry in zip(results, report["results"], strict=True):  # type: ignore[arg-type]
            if isinstance(result, hub_bench.SeriesResult):
                entry["series"] = result.series  # the memory samples behind the figures
        for name in (f"{suite}-{stamp}.json", f"{suite}-latest.json"):
            (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
        console.print(_table(suite, results, host))
    console.print(f"written to {args.out}/<suite>-{stamp}.json")
    return 0


def _table(suite: str, results: list[plumbing.Result], host: dict[str, object]) -> Table:
    table = Table(title=f"kanalhub {suite} benchmarks - {host['cores']} cores, {host['cpu_model']}")
    table.add_column("benchmark")
    table.add_column("figures")
    table.add_column("baseline (same run)")
    table.add_column("note")
    for result in results:
        table.add_row(
            result.name,
            ", ".join(f"{k} {v:,.2f}" for k, v in result.figures.items()),
            ", ".join(f"{k} {v:,.2f}" for k, v in result.baseline.items()),
            result.note,
        )
    return table


if __name__ == "__main__":
    raise SystemExit(main())
