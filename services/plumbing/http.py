"""The FastAPI app every service is built on: lifespan, health, readiness, metrics, errors.

``create_service_app`` gives each service the same ``/healthz``, ``/readyz``, ``/metrics``,
``/docs`` and ``/redoc`` from local assets (``api_docs``, with a Content-Security-Policy on every
HTML page), RFC 9457 errors, request ids, header limits (``header_limits``, 431), request-size
limit, refusal of unknown query parameters (``query_guard``) and of bodies of a media type the
operation does not take (``content_types``, 415), security response headers on every answer
(``security_headers``), exact paths (no trailing-slash redirect) and HTTP metrics; the service
adds its own routers and its event handlers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.contracts import EventType
from services.plumbing.api_docs import HtmlContentSecurityPolicy, install_api_docs
from services.plumbing.auth import JwtVerifier
from services.plumbing.body_guards import BodyReadTimeout, BodySizeLimit
from services.plumbing.consumer import Handler
from services.plumbing.content_types import ContentTypeGuard
from services.plumbing.header_limits import HeaderLimit
from services.plumbing.kafka_security import kafka_transport_warning
from services.plumbing.logging import configure_logging, get_logger
from services.plumbing.metrics import HTTP_DURATION, HTTP_REQUESTS
from services.plumbing.openapi_contract import document_enforced_rules
from services.plumbing.problems import install_problem_handlers
from services.plumbing.query_guard import QueryGuard
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.scrape_auth import check_scrape
from services.plumbing.security_headers import SecurityHeaders
from services.plumbing.settings import ServiceSettings

log = get_logger(__name__)

ExtraLifespan = Callable[[FastAPI, ServiceRuntime], AbstractAsyncContextManager[None]]

# Probes and scrapes are not traffic; leaving them out keeps the request metrics meaningful.
_UNMEASURED = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContext:
    """Pure ASGI middleware: request id in and out, log context, HTTP metrics by route template."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template not in _UNMEASURED:
                method = scope["method"]
                HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
                HTTP_DURATION.labels(self.service, method, template).observe(
                    time.perf_counter() - started
                )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            # Accept a caller's id only if it is short and printable: it ends up in our logs.
            if 0 < len(candidate) <= 128 and candidate.isprintable():
                return candidate
    return None


def _outermost(app: FastAPI, middleware: Callable[..., ASGIApp], **options: Any) -> None:
    """Wrap ``middleware`` around the whole of ``app``'s stack, Starlette's error middleware
    included: ``add_middleware`` places it inside that one, so the 500 it sends for an
    unexpected exception would go out without what ``middleware`` adds."""
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return middleware(build(), **options)

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]


ScrapeExtra = Callable[[FastAPI], Awaitable[bytes]]
"""Produces extra Prometheus exposition text for ``/metrics`` at scrape time."""


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    handlers: Mapping[EventType, Handler] | None = None,
    routers: Sequence[APIRouter] = (),
    extra_lifespan: ExtraLifespan | None = None,
    transaction_per_batch: bool = False,
    scrape_extra: ScrapeExtra | None = None,
) -> FastAPI:
    """Build a service's FastAPI app; nothing connects until the lifespan starts.

    ``transaction_per_batch`` applies each fetched batch of events in one Redis transaction
    (see ``EventConsumer._apply_batch``): for handlers such as counters that never read what
    an earlier event of the same batch wrote. ``scrape_extra`` adds Prometheus text read at
    scrape time (from Redis), appended to the process's own metrics on ``/metrics``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.hub, settings.service)
        runtime = ServiceRuntime(settings, handlers, transaction_per_batch=transaction_per_batch)
        app.state.runtime = runtime
        await runtime.start()
        log.info("service started", port=settings.port, environment=settings.hub.environment)
        if (kafka_warning := kafka_transport_warning(settings.hub)) is not None:
            log.warning(kafka_warning)
        try:
            if extra_lifespan is None:
                yield
            else:
                async with extra_lifespan(app, runtime):
                    yield
        finally:
            await runtime.stop()
            log.info("service stopped")

    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        # Starlette's trailing-slash redirect builds an absolute Location from the Host header
        # (a hostile Host turned it into a redirect to any site). Paths are exact, as the
        # OpenAPI document declares them: /entries/ is 404, like any other unknown path.
        redirect_slashes=False,
        # FastAPI's docs pages load their scripts from a CDN; install_api_docs serves them.
        docs_url=None,
        redoc_url=None,
    )
    install_api_docs(app)
    app.state.settings = settings
    app.state.jwt_verifier = JwtVerifier(settings.hub)
    install_problem_handlers(app)
    # After the problem handlers: it edits the document they complete (drops 428 where no
    # If-Match is read).
    document_enforced_rules(app)
    # Innermost: it refuses before anything of the operation runs, and the request id and
    # metrics of the middleware around it still apply to its 400.
    app.add_middleware(
        QueryGuard,
        routes=app.router.routes,
        # Swagger UI's OAuth2 redirect receives whatever the authorisation server appends.
        unguarded_paths=[path for path in [app.swagger_ui_oauth2_redirect_url] if path],
    )
    # Next to the query guard: a body of a type the operation does not take is refused (415)
    # before anything of the operation runs.
    app.add_middleware(ContentTypeGuard, routes=app.router.routes)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeout, seconds=settings.body_timeout_seconds)
    app.add_middleware(HtmlContentSecurityPolicy)
    # Outside the body guards and routing (so before auth), inside RequestContext (so the 431
    # carries a request id and is counted).
    app.add_middleware(
        HeaderLimit, max_bytes=settings.max_header_bytes, max_count=settings.max_header_count
    )
    app.add_middleware(RequestContext, service=settings.service)
    _outermost(app, SecurityHeaders, hsts_seconds=settings.hub.hsts_seconds)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Redis and Kafka answer (503 until they do)",
        responses={503: {"description": "A dependency does not answer"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = await request.app.state.runtime.readiness()
        ready = all(checks.values())
        return JSONResponse(
            {
                "status": "ready" if ready else "not ready",
                "service": settings.service,
                "checks": checks,
            },
            status_code=200 if ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={401: {"description": "No or a wrong scrape token (KANALHUB_PROMETHEUS_AUTH)"}},
    )
    async def metrics(request: Request) -> Response:
        token = settings.hub.prometheus_token
        check_scrape(
            request.headers.get("authorization"),
            settings.hub.scrape_auth,
            token.get_secret_value() if token is not None else None,
        )
        body = generate_latest()
        if scrape_extra is not None:
            body += await scrape_extra(request.app)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
