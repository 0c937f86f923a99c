"""Container HEALTHCHECK: GET /healthz on the port of the service this container runs.

The service is the last argument of PID 1's command line (``kanalhub serve <service>``); its
port is ``KANALHUB_<SERVICE>_PORT`` or the service's default. Standard library only.
"""

from __future__ import annotations

import os
import sys
import urllib.request

DEFAULT_PORTS = {"registry": 8001, "kvik": 8002, "mobile": 8003, "metrics": 8004}


def service_name(cmdline: bytes) -> str:
    """The service of ``kanalhub serve <service>`` (NUL-separated /proc/1/cmdline)."""
    args = [arg.decode() for arg in cmdline.split(b"\0") if arg]
    for arg in reversed(args):
        if arg in DEFAULT_PORTS:
            return arg
    raise SystemExit(f"healthcheck: no service in the command line {args!r}")


def healthz_url(service: str, environ: dict[str, str]) -> str:
    """The /healthz URL of ``service`` inside its container."""
    port = environ.get(f"KANALHUB_{service.upper()}_PORT", str(DEFAULT_PORTS[service]))
    return f"http://127.0.0.1:{int(port)}/healthz"


def main(cmdline: str = "/proc/1/cmdline") -> int:
    """0 when the service answers /healthz with 200, else 1 (Docker's healthy/unhealthy)."""
    with open(cmdline, "rb") as handle:
        url = healthz_url(service_name(handle.read()), dict(os.environ))
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
