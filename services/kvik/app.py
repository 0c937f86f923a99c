"""Builds the kvik service's FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.kvik.api import router
from services.kvik.events import handlers
from services.kvik.schemas import SessionIn
from services.kvik.service import KvikService
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore
from services.plumbing.backoff import stop_if_cancelled
from services.plumbing.http import create_service_app
from services.plumbing.logging import get_logger
from services.plumbing.problems import Problem
from services.plumbing.runtime import ServiceRuntime

log = get_logger(__name__)


async def _every(seconds: float, work: Callable[[], Awaitable[int]], name: str) -> None:
    """Run ``work`` every ``seconds`` until cancelled; a failure is logged and retried."""
    while True:
        await asyncio.sleep(seconds)
        try:
            done = await work()
            if done:
                log.info(f"{name} acted", count=done)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stop_if_cancelled()
            log.warning(f"{name} failed, retrying next round", error=repr(exc))


def create_app(settings: KvikSettings | None = None) -> FastAPI:
    """The kvik service with its routes, event handlers and lifespan; connects on startup.

    The lifespan also runs the idle-session sweeper, the kiosk liveness monitor and the help
    escalation in every replica: each of their writes is a claim that only one replica wins.
    """
    settings = settings or KvikSettings()

    @asynccontextmanager
    async def kvik_lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        store = KvikStore(runtime.redis, settings.hub, runtime.outbox)
        service = KvikService(store, settings)
        app.state.kvik = service
        tasks: list[asyncio.Task[None]] = []
        if settings.background_tasks:
            for seconds, work, name in (
                (settings.sweep_interval_seconds, service.streaming.sweep_once, "idle sweeper"),
                (settings.liveness_check_seconds, service.kiosks.check_liveness_once, "liveness"),
                (settings.help_check_seconds, service.help.escalate_once, "help escalation"),
            ):
                tasks.append(asyncio.create_task(_every(seconds, work, name), name=name))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = create_service_app(
        settings,
        title="kanalhub KVIK",
        description=(
            "Borgerservice KVIK: kiosk devices in libraries and culture houses post self-"
            "service sessions here; staff help by video or phone. Publishes session and kiosk"
            " events."
        ),
        handlers=handlers(settings.hub),
        routers=[router],
        extra_lifespan=kvik_lifespan,
    )
    # Redis not answering in time is not a bug of ours: a 503 kiosks retry (every write is
    # idempotent), and one log line instead of a traceback per request.
    app.add_exception_handler(RedisConnectionError, _store_unavailable)
    app.add_exception_handler(RedisTimeoutError, _store_unavailable)
    _document_session_body(app)
    return app


def _document_session_body(app: FastAPI) -> None:
    """Register the ``SessionIn`` schema that ``POST /sessions`` and the batch refer to.

    ``POST /sessions`` reads its body itself (see ``api._session_body``), so FastAPI no longer
    finds the model among the route's parameters; the schema is the one FastAPI wrote for it.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in _body_schemas().items():
            schemas.setdefault(name, schema)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _body_schemas() -> dict[str, Any]:
    # FastAPI's own rendering of SessionIn as a request body (it differs from pydantic's
    # model_json_schema in details such as null defaults), taken from a throwaway app.
    probe = FastAPI()

    @probe.post("/")
    async def session(body: SessionIn) -> None:
        """Only here to be documented."""

    schemas: dict[str, Any] = probe.openapi()["components"]["schemas"]
    return {name: schemas[name] for name in schemas if name not in _FASTAPI_OWN}


_FASTAPI_OWN = frozenset({"HTTPValidationError", "ValidationError"})


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable", path=request.url.path, error=type(exc).__name__)
    return Problem(
        503,
        "store-unavailable",
        "Store unavailable",
        detail="The service's store did not answer in time. Retry shortly: a retried write "
        "acts once.",
        headers={"Retry-After": "1"},
    ).to_response(request)
