"""Bad input at scale: schemathesis generates requests from each service's OpenAPI document
(valid, boundary and malformed) and checks that no answer is a 5xx and that every answer's
status, content type and body match what the document promises."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from services.hub.cluster import SERVICES, Cluster
from services.plumbing.auth import development_tokens

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


@pytest.mark.parametrize("name", SERVICES)
async def test_generated_requests_get_no_5xx_and_documented_answers(
    cluster: Cluster, name: str, tmp_path: Path
) -> None:
    token = development_tokens(cluster.hub)["all-roles"]
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{cluster.url(name)}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "10",
        "--checks",
        CHECKS,
        "--generation-deterministic",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 600)
    assert process.returncode == 0, output.decode()[-8000:]
