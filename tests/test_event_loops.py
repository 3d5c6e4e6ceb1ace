"""The proxy behaves the same on plain asyncio and on uvloop (used when installed).

The in-process proxy tests run on whichever loop ``INSPECTOR_LOOP`` picks (uvloop when
installed); ``.ci/run`` runs them a second time on plain asyncio. This module checks both
loops end to end in one run, and that the loop asked for is the one the proxy runs.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import needs_curl
from tests.proxy_process import ProxyProcess
from tests.servers import EchoServer

LOOPS = [
    "asyncio",
    pytest.param(
        "uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None, reason="uvloop not installed"
        ),
    ),
]


def _maps_uvloop(pid: int) -> bool:
    """Whether uvloop's extension module is mapped into process ``pid`` (Linux /proc)."""
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        pytest.skip("no /proc here to see which event loop the proxy runs")
    return "/uvloop/loop." in maps.read_text()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_curl
@pytest.mark.parametrize("loop", LOOPS)
def test_plain_intercepted_and_failed_exchanges(
    loop: str, tmp_path: Path, echo_server: EchoServer, tls_echo_server: EchoServer,
    upstream_ca_file: Path,
) -> None:  # fmt: skip
    proxy = ProxyProcess(
        tmp_path, "--upstream-ca", str(upstream_ca_file), env={"INSPECTOR_LOOP": loop}
    )
    refused = f"http://127.0.0.1:{_closed_port()}/"
    trust_ours = ["--cacert", str(proxy.confdir / "ca.pem")]
    try:
        assert _maps_uvloop(proxy.proc.pid) == (loop == "uvloop"), f"not running on {loop}"
        for url, extra in (
            (f"{echo_server.url}/status/404", []),
            (f"https://localhost:{tls_echo_server.port}/echo", trust_ours),
            (refused, []),
        ):
            subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-x", proxy.url, *extra, url],
                check=False, timeout=30,
            )  # fmt: skip
    finally:
        out, _ = proxy.stop()
    lines = sorted(line.split("  ")[0] for line in out.splitlines())
    assert lines == sorted(
        [
            f"GET {echo_server.url}/status/404 -> 404 Not Found",
            f"GET https://localhost:{tls_echo_server.port}/echo -> 200 OK",
            f"GET {refused} -> ERROR ConnectionRefusedError: [Errno 111] Connection refused",
        ]
    )
