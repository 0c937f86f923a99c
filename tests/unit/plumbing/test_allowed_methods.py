"""405 on a tiny app: the ``Allow`` header lists every method the path serves, across the
several routes that serve it (included routers too), and only those."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from services.plumbing.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things")
    async def list_things() -> list[str]:
        return []

    @app.post("/things")
    async def add_thing() -> str:
        return "added"

    router = APIRouter(prefix="/nested")

    @router.put("/{item}")
    async def put_item(item: str) -> str:
        return item

    @router.delete("/{item}")
    async def delete_item(item: str) -> str:
        return item

    @router.get("/fixed")
    async def fixed() -> str:
        return "fixed"

    app.include_router(router)
    return app


async def _allow(method: str, path: str) -> tuple[int, set[str], str]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(method, path)
    allow = {part.strip() for part in response.headers.get("allow", "").split(",") if part}
    return response.status_code, allow, response.headers.get("content-type", "")


async def test_a_path_served_by_two_routes_lists_both_methods() -> None:
    status, allow, media = await _allow("DELETE", "/things")
    assert (status, allow) == (405, {"GET", "POST"})
    assert media.startswith(PROBLEM_MEDIA_TYPE)


async def test_routes_of_an_included_router_are_listed_together() -> None:
    assert await _allow("GET", "/nested/x-1") == (405, {"PUT", "DELETE"}, PROBLEM_MEDIA_TYPE)


async def test_a_fixed_path_that_a_template_also_matches_lists_the_methods_of_both() -> None:
    # PUT /nested/fixed is taken by PUT /nested/{item}: the header must say so.
    status, allow, _ = await _allow("PATCH", "/nested/fixed")
    assert (status, allow) == (405, {"GET", "PUT", "DELETE"})


async def test_head_is_not_listed_where_the_app_does_not_serve_it() -> None:
    status, allow, _ = await _allow("HEAD", "/things")
    assert (status, allow) == (405, {"GET", "POST"})
