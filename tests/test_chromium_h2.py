"""Chromium through the proxy: HTTP/2 to an HTTP/2 origin, HTTP/1.1 to an HTTP/1.1-only one.

Debian's headless ``chromium`` loads a local HTTPS page with subresources through the proxy
(``--proxy-server``; the inspector's leaf key and CA accepted by their SPKI hashes). Each
request must be a flow, made over the protocol Chromium would speak without the proxy.
Skipped where /usr/bin/chromium is not installed (CI does not need it).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from inspector.flow import Flow
from tests.h2_servers import HypercornServer
from tests.proxy_fixtures import LiveProxy, live_proxy

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)

GIF = bytes.fromhex(
    "474946383961010001008000000000" "00ffffff21f90401000000002c00000000010001000002024401003b"
)  # fmt: skip
PAGE = b"""<!doctype html><html><head><title>waiting</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/style.css">
<script src="/app.js"></script></head>
<body><img src="/pixel.gif?1"><img src="/pixel.gif?2"><img src="/pixel.gif?3"></body></html>"""
RESOURCES = {
    "/": ("text/html", PAGE),
    "/style.css": ("text/css", b"body { background: url(/bg.gif); }"),
    "/app.js": ("text/javascript", b"document.title = 'script ran';"),
    "/bg.gif": ("image/gif", GIF),
    "/pixel.gif?1": ("image/gif", GIF),
    "/pixel.gif?2": ("image/gif", GIF),
    "/pixel.gif?3": ("image/gif", GIF),
}


async def site(scope: dict, receive: Callable, send: Callable) -> None:
    """ASGI app serving RESOURCES by path and query."""
    if scope["type"] != "http":
        return
    query = scope["query_string"].decode()
    ctype, body = RESOURCES.get(scope["path"] + (f"?{query}" if query else ""), ("", b""))
    await send(
        {
            "type": "http.response.start",
            "status": 200 if ctype else 404,
            "headers": [(b"content-type", ctype.encode()), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def cert_files(
    upstream_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    cert = upstream_ca.issue_cert("localhost")
    d = tmp_path_factory.mktemp("chromium-origin")
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    return d / "cert.pem", d / "key.pem"


@pytest.fixture(scope="module", params=[["h2", "http/1.1"], ["http/1.1"]], ids=["h2", "http1"])
def origin(
    request: pytest.FixtureRequest, cert_files: tuple[Path, Path]
) -> Iterator[HypercornServer]:
    server = HypercornServer(*cert_files, app=site, alpn=request.param)
    server.alpn = request.param  # type: ignore[attr-defined]
    yield server
    server.close()


def _spki_hash(pem: bytes) -> str:
    key = x509.load_pem_x509_certificate(pem).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _load(proxy: LiveProxy, url: str, profile: Path) -> str:
    """The page's DOM once Chromium has loaded it (and its subresources) through the proxy."""
    certstore = proxy.runtime.certstore
    spki = [_spki_hash(certstore.leaf_pem("localhost")), _spki_hash(proxy.ca_file.read_bytes())]
    done = subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", f"--proxy-server={proxy.url}",
            "--proxy-bypass-list=<-loopback>",  # localhost goes through the proxy too
            f"--ignore-certificate-errors-spki-list={','.join(spki)}",
            "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _origin_flows(proxy: LiveProxy, port: int, timeout: float = 30) -> list[Flow]:
    """The finished flows to the origin (Chromium's own background requests left out)."""
    deadline = time.monotonic() + timeout
    count = len(RESOURCES)
    while True:
        done = proxy.finished(count, timeout=max(deadline - time.monotonic(), 0.1))
        ours = [f for f in done if (f.request.host, f.request.port) == ("localhost", port)]
        if len(ours) >= len(RESOURCES):
            return ours
        count = len(done) + 1


def test_chromium_speaks_what_the_origin_speaks_and_every_request_is_a_flow(
    tmp_path: Path, origin: HypercornServer, upstream_ca_file: Path
) -> None:
    with live_proxy(tmp_path, upstream_ca=upstream_ca_file) as proxy:
        dom = _load(proxy, f"https://localhost:{origin.port}/", tmp_path / "profile")
        flows = _origin_flows(proxy, origin.port)
    assert "<title>script ran</title>" in dom  # the script came through and ran
    by_path = {f.request.path: f for f in flows}
    assert set(by_path) == set(RESOURCES)  # the page and every subresource, each a flow
    assert all(f.response is not None and f.response.status_code == 200 for f in flows)
    expected = "HTTP/2" if "h2" in origin.alpn else "HTTP/1.1"  # type: ignore[attr-defined]
    assert {f.request.http_version for f in flows} == {expected}
    assert {f.response.http_version for f in flows} == {expected}  # type: ignore[union-attr]
    alpn = "h2" if expected == "HTTP/2" else "http/1.1"
    # Chromium offered h2 both times; what it got followed what the origin picked
    assert {(f.tls.client_alpn, f.tls.upstream_alpn) for f in flows} == {("h2,http/1.1", alpn)}  # type: ignore[union-attr]
