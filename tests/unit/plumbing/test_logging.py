"""What a logged exception looks like in the development (console) format."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from services.plumbing.logging import configure_logging
from services.plumbing.settings import HubSettings


@pytest.fixture
def console_log() -> Iterator[io.StringIO]:
    """Console logging configured as a service does it, written here; undone afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(HubSettings(log_format="console"), "test")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    handler.setStream(written)
    yield written
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _fail_holding(body: str) -> None:
    raise ValueError("refused")


def test_a_logged_exception_is_a_plain_traceback_without_local_variables(
    console_log: io.StringIO,
) -> None:
    # A request body in a local variable: rendering it would put personal data into the log,
    # and rendering tracebacks with Rich (locals or not) cost seconds on the event loop.
    body = "request-body-with-personal-data"
    try:
        _fail_holding(body)
    except ValueError:
        logging.getLogger("test").exception("unhandled")
    written = console_log.getvalue()
    assert "Traceback (most recent call last):" in written
    assert "ValueError: refused" in written
    assert body not in written
    assert "╭" not in written  # Rich's panel
