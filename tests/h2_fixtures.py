"""Fixtures for HTTP/2 tests outside the proxy's own: hypercorn over TLS and in plain text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.h2_servers import HypercornServer


@pytest.fixture(scope="module")
def hypercorn_tls(
    upstream_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypercornServer]:
    """hypercorn on 127.0.0.1 over TLS (ALPN h2 and http/1.1), certified for localhost."""
    cert = upstream_ca.issue_cert("localhost", "127.0.0.1")
    d: Path = tmp_path_factory.mktemp("hypercorn-tls")
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    server = HypercornServer(d / "cert.pem", d / "key.pem")
    yield server
    server.close()


@pytest.fixture(scope="module")
def hypercorn_plain() -> Iterator[HypercornServer]:
    """hypercorn in plain text: HTTP/1.1, or HTTP/2 for a client with prior knowledge."""
    server = HypercornServer()
    yield server
    server.close()
