"""A service app under test: its lifespan running, connected to Kafka, and an in-process client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.plumbing.runtime import ServiceRuntime

CONNECT_WITHIN = 60.0
"""Seconds a started app may take to connect to Kafka (creating the topics on a freshly
started Apache Kafka takes a moment)."""


@asynccontextmanager
async def running_app(app: FastAPI, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` with its lifespan running and connected to Kafka (``/readyz`` would answer 503
    before), and a client for it at ``http://<name>``; the app stops as a deployment stops it
    when the block ends."""
    async with app.router.lifespan_context(app):
        runtime: ServiceRuntime = app.state.runtime
        await asyncio.wait_for(runtime.kafka_connected.wait(), CONNECT_WITHIN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
            yield client


async def outbox_drained(app: FastAPI, within: float = 30.0) -> None:
    """Wait until the app's relay has published everything staged in its outbox (so what a
    test reads from the topic afterwards is all the app wrote)."""
    runtime: ServiceRuntime = app.state.runtime
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while await runtime.outbox.depth() > 0:
        assert loop.time() < deadline, "the relay did not drain the outbox"
        await asyncio.sleep(0.05)
