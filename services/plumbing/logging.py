"""Structured logging: one JSON object per line in production, readable lines in development.

Request ids and event ids are bound with ``structlog.contextvars`` by the HTTP middleware and
the consumer loop, so every line written while handling them carries the id.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from services.plumbing.settings import HubSettings


def configure_logging(settings: HubSettings, service: str) -> None:
    """Route stdlib and structlog output through one renderer chosen by ``log_format``."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    final: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if settings.log_format == "json"
        else [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(),
                # Plain tracebacks, as Python prints them. Logging runs on the event loop's
                # thread, so the formatter's cost is every request's latency. Rich's formatter
                # has Pygments tokenise the whole source file of every frame: about a second of
                # CPU per traceback of a 500 deep in FastAPI's stack, twice per 500 under uvicorn
                # (which logs it again). That froze the service for seconds and pushed the
                # outbox relay's Redis reads past their timeout (issue 19). Rich's local
                # variables were worse still, and hold request bodies (possibly personal data).
                exception_formatter=structlog.dev.plain_traceback,
            )
        ]
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # aiokafka logs every failed reconnect at ERROR with a traceback; our loops log one clear
    # line per retry instead, so keep the library quieter.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    """A structlog logger; use keyword arguments for fields (``log.info("sent", topic=t)``)."""
    return structlog.get_logger(name)
