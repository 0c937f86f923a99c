"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served from the
service itself, and the Content-Security-Policy of every HTML page a service sends.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN: they fail on a closed
municipal network, and put third-party code fetched at view time into a page an administrator
pastes tokens into. Here the scripts and styles come from the pinned ``fastapi-offline``
package (it bundles Swagger UI 5 and ReDoc 2; see pyproject.toml) and are served under
:data:`ASSETS_PATH`. Each docs page allows exactly its own inline start-up script (by hash),
scripts from this origin, and nothing from anywhere else.

:class:`HtmlContentSecurityPolicy` gives every other HTML answer (the metrics service's
built-in page) :data:`PAGE_POLICY`: no scripts at all, inline styles (the page draws its charts
as inline SVG with inline CSS), images from this origin or data: URIs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ASSETS_PATH = "/docs-assets"
_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""For HTML without scripts: anything injected into it could not run."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str) -> str:
    """The CSP of a docs page: its own inline scripts (by SHA-256), scripts and styles from
    this origin, inline styles (Swagger UI and ReDoc set styles from script), the OpenAPI
    document and "try it out" calls to this origin, ReDoc's search worker (a blob: URL)."""
    script_src = ["'self'"] + [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    return (
        f"default-src 'none'; script-src {' '.join(script_src)}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    return HTMLResponse(
        html, headers={"Content-Security-Policy": docs_policy(html), "Cache-Control": "no-store"}
    )


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its OAuth2 redirect page and ``/redoc`` from local assets.

    The app must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=_ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=redirect_url,
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                # Swagger UI would otherwise send the document to validator.swagger.io.
                swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
            )
        )

    if redirect_url:

        @app.get(redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return _with_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_policy(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )


class HtmlContentSecurityPolicy:
    """Pure ASGI middleware: an HTML answer without a Content-Security-Policy gets
    :data:`PAGE_POLICY` (the docs pages bring their own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {bytes(name).lower(): bytes(value) for name, value in headers}
                html = names.get(b"content-type", b"").startswith(b"text/html")
                if html and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_POLICY.encode()))
            await send(message)

        await self.app(scope, receive, send_with_policy)
