"""Find (or, as root, install) the Prometheus tools the deploy checks run.

``promtool`` and ``prometheus`` come from the Debian package ``prometheus``; ``make tools``
installs it, and so does this module when the tests run as root with apt-get available.
Otherwise the caller skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def prometheus_tool(name: str) -> str:
    """The path of ``name`` (``promtool`` or ``prometheus``); skips the test if unavailable."""
    found = shutil.which(name)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            f"{name} not found and cannot install it (needs root and apt-get): "
            "apt-get install prometheus, or run `make tools`"
        )
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
    ):
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            timeout=300,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    found = shutil.which(name)
    assert found, f"apt-get install prometheus did not provide {name}"
    return found
