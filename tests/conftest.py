"""Shared fixtures: a trustme CA, plain and TLS echo servers, raw misbehaving peers, the proxy."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests.proxy_fixtures import LiveProxy, live_proxy
from tests.servers import EchoServer, RawServer, has_ipv6


@pytest.fixture(scope="session")
def upstream_ca() -> trustme.CA:
    """The independent CA for upstream-side TLS (never the product's own CA)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def upstream_ca_file(upstream_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("upstream-ca") / "ca.pem"
    upstream_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def server_tls_context(upstream_ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    upstream_ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_tls_context(upstream_ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    upstream_ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def healthy() -> Iterator[EchoServer]:
    """An echo server for a whole module: after each fault, the proxy must still reach it."""
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def tls_echo_server(server_tls_context: ssl.SSLContext) -> Iterator[EchoServer]:
    server = EchoServer(tls=server_tls_context)
    yield server
    server.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """Factory: ``raw_server(handler, host=..., tls=...)`` starts a misbehaving peer."""
    started: list[RawServer] = []

    def start(handler, **kwargs) -> RawServer:  # type: ignore[no-untyped-def]
        server = RawServer(handler, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback on this machine")


@pytest.fixture
def proxy_options() -> dict[str, object]:
    """Config fields for the ``proxy`` fixture: a test module overrides this to configure it."""
    return {}


@pytest.fixture
def proxy(tmp_path: Path, proxy_options: dict[str, object]) -> Iterator[LiveProxy]:
    """The real proxy on a background thread, with a fresh confdir and session under tmp_path."""
    with live_proxy(tmp_path, **proxy_options) as p:
        yield p


NO_CURL = "curl is not installed (these tests use it as a real client)"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason=NO_CURL)


def run_curl(*args: str, text: bool = False) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """curl as a client (``-q``: never reads ~/.curlrc), bounded; skips the test without curl."""
    if shutil.which("curl") is None:
        pytest.skip(NO_CURL)
    return subprocess.run(
        ["curl", "-q", "-sS", "--max-time", "20", *args],
        capture_output=True, text=text, timeout=30, check=False,
    )  # fmt: skip


# Names through which a test module runs the proxy: its tests are the "proxy" tests, which
# .ci/run runs a second time on plain asyncio (INSPECTOR_LOOP=asyncio).
_RUNS_THE_PROXY = ("live_proxy", "LiveProxy", "ProxyProcess")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        names = vars(module) if module is not None else {}
        if "proxy" in getattr(item, "fixturenames", ()) or any(n in names for n in _RUNS_THE_PROXY):
            item.add_marker(pytest.mark.proxy)
