"""``python -m bench.run``: start the embedded broker and Valkey, run the benchmarks, print a
table and write ``bench/results/<suite>-<time>.json`` (and ``<suite>-latest.json``)."""

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

from bench import machine, plumbing
from services.hub.embedded import DEFAULT_BROKER, ValkeyProcess, free_port, make_broker
from services.plumbing.settings import Environment, HubSettings

RESULTS = Path(__file__).parent / "results"
FULL_SIZE = 20_000
TINY_SIZE = 200


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; ``--tiny`` is the quick run ``make test`` uses (no timing claims)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a few hundred events, for tests")
    parser.add_argument("--events", type=int, help="events per benchmark (default 20,000)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
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
            )
            with console.status(f"plumbing benchmarks, {count} events each"):
                results = asyncio.run(plumbing.run_all(settings, count, relaxed.url))
        finally:
            relaxed.stop()
            valkey.stop()
            broker.stop()
    report = {
        "suite": "plumbing",
        "started_at": datetime.now(UTC).isoformat(),
        "size": {"events": count, "tiny": args.tiny},
        "machine": machine.describe(),
        "components": {"broker": kind, "valkey_appendfsync": "always"},
        "results": plumbing.as_json(results),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"plumbing-{stamp}.json", "plumbing-latest.json"):
        (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
    console.print(_table(results, report["machine"]))
    console.print(f"written to {args.out / f'plumbing-{stamp}.json'}")
    return 0


def _table(results: list[plumbing.Result], host: dict[str, object]) -> Table:
    table = Table(
        title=f"kanalhub plumbing benchmarks - {host['cores']} cores, {host['cpu_model']}"
    )
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
