"""The one Dockerfile: pinned slim base, non-root, no build tools at run time, a HEALTHCHECK."""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from services.hub.embedded import free_port
from tests.unit.deploy.support import DEPLOY, ROOT, SERVICE_PORTS

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _stages() -> list[str]:
    """The text of each build stage, in order."""
    return re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]


def _healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kanalhub_healthcheck", DEPLOY / "docker" / "healthcheck.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_base_image_is_a_pinned_python_311_slim() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert base, "the base image is chosen once, in ARG PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1)), base.group(1)
    assert [stage.split()[0] for stage in _stages()] == ["${PYTHON_IMAGE}"] * 2


def test_the_final_stage_runs_as_a_non_root_user_without_build_tools() -> None:
    final = _stages()[-1]
    user = re.search(r"^USER (\S+)$", final, flags=re.MULTILINE)
    assert user
    assert user.group(1).split(":")[0] not in {"0", "root"}
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in final, f"{tool} in the final stage"
    assert "COPY --from=build /opt/kanalhub /opt/kanalhub" in final


def test_the_package_is_installed_without_the_embedded_extra() -> None:
    build = _stages()[0]
    assert "/opt/kanalhub/bin/pip install ." in build
    assert "embedded" not in build


def test_the_entrypoint_serves_the_service_named_by_the_command() -> None:
    final = _stages()[-1]
    assert 'ENTRYPOINT ["kanalhub", "serve"]' in final
    assert re.search(r'^CMD \["(registry|kvik|mobile|metrics)"\]$', final, flags=re.MULTILINE)
    assert "KANALHUB_ENVIRONMENT=production" in final
    assert "KANALHUB_JWT" not in DOCKERFILE  # no secret baked in


def test_the_healthcheck_asks_healthz_with_python() -> None:
    final = _stages()[-1]
    assert re.search(
        r'HEALTHCHECK .*\n\s+CMD \["python", "/usr/local/lib/kanalhub/healthcheck.py"\]', final
    )
    assert "COPY deploy/docker/healthcheck.py /usr/local/lib/kanalhub/healthcheck.py" in final


@pytest.mark.parametrize(("service", "port"), SERVICE_PORTS.items())
def test_the_healthcheck_finds_the_port_of_the_running_service(service: str, port: int) -> None:
    module = _healthcheck()
    cmdline = b"\0".join([b"/opt/kanalhub/bin/python", b"/opt/kanalhub/bin/kanalhub"])
    cmdline += b"\0serve\0" + service.encode() + b"\0"
    assert module.service_name(cmdline) == service
    assert module.healthz_url(service, {}) == f"http://127.0.0.1:{port}/healthz"
    overridden = {f"KANALHUB_{service.upper()}_PORT": "9000"}
    assert module.healthz_url(service, overridden) == "http://127.0.0.1:9000/healthz"


def test_the_healthcheck_refuses_a_command_without_a_service() -> None:
    with pytest.raises(SystemExit, match="no service"):
        _healthcheck().service_name(b"kanalhub\0topics\0")


def test_the_build_context_leaves_out_the_venv_tests_and_data() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("*")] == "*"  # deny everything, then allow what the build copies
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "services", "deploy/docker"}


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def healthz_server() -> Iterator[int]:
    """An HTTP server answering /healthz with 200, on a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_healthcheck_reports_healthy_and_unhealthy(
    healthz_server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/opt/kanalhub/bin/python\0/opt/kanalhub/bin/kanalhub\0serve\0kvik\0")
    monkeypatch.setenv("KANALHUB_KVIK_PORT", str(healthz_server))
    assert _healthcheck().main(str(cmdline)) == 0
    monkeypatch.setenv("KANALHUB_KVIK_PORT", str(free_port()))
    assert _healthcheck().main(str(cmdline)) == 1
