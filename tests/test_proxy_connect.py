"""CONNECT dials its target before answering (mitmproxy's "eager" strategy).

An unreachable target is a 502 (504 when the connect times out) with the reason in one
line, recorded as a CONNECT flow with an exception of phase connect, and the client
connection stays usable; a reachable one is answered 200 and the connection dialled for
it carries the tunnel's first exchange (the origin sees one connection). --ignore-hosts
also matches the ClientHello's SNI. (With rules or addons loaded the tunnel opens anyway:
test_rules_proxy.py's map-remote from an unresolvable host shows it.)
"""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import requests
from cryptography import x509

from tests.client_fixtures import UnansweredListener
from tests.origin_fixtures import RecordingOrigin
from tests.proxy_fixtures import LiveProxy, live_proxy, read_head, read_response
from tests.servers import EchoServer


def send_connect(s: socket.socket, target: str) -> None:
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())


def then_get(s: socket.socket, server: EchoServer) -> int:
    """The same client connection serves a normal request after the refused CONNECT."""
    s.sendall(f"GET {server.url}/status/200 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return read_response(s)[0]


def test_connect_to_a_closed_port_is_a_502_before_any_tunnel(
    proxy: LiveProxy, echo_server: EchoServer
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: the connect is refused
        target = f"127.0.0.1:{closed.getsockname()[1]}"
        with proxy.connect() as s:
            send_connect(s, target)
            status, headers, body = read_response(s)
            assert then_get(s, echo_server) == 200
    assert status == 502 and "connection" not in headers
    assert body.count(b"\n") == 1 and body.endswith(b"\n")
    assert b"ConnectionRefusedError" in body and b"during connect" in body
    (flow,) = [f for f in proxy.finished(2) if f.request.method == "CONNECT"]
    assert flow.request.url == target and flow.response is None
    assert flow.error is not None
    assert (flow.error.exc_class, flow.error.phase) == ("ConnectionRefusedError", "connect")


def test_connect_timeout_is_a_504(tmp_path: Path) -> None:
    listener = UnansweredListener()
    try:
        with live_proxy(tmp_path, connect_timeout=0.3) as proxy, proxy.connect() as s:
            send_connect(s, f"127.0.0.1:{listener.port}")
            status, _, body = read_response(s)
            (flow,) = proxy.finished(1)
    finally:
        listener.close()
    assert status == 504 and b"TimeoutError" in body and body.count(b"\n") == 1
    assert flow.error is not None
    assert (flow.error.exc_class, flow.error.phase) == ("TimeoutError", "connect")


def test_the_dialled_connection_carries_the_tunnels_first_exchange(
    tmp_path: Path, upstream_ca_file: Path, server_tls_context: ssl.SSLContext
) -> None:
    origin = RecordingOrigin(tls=server_tls_context)
    try:
        with live_proxy(tmp_path, upstream_ca=upstream_ca_file) as proxy:
            url = f"https://localhost:{origin.server.port}/first"
            proxies = {"https": proxy.url}
            with requests.Session() as s:
                for _ in range(2):
                    r = s.get(url, proxies=proxies, verify=str(proxy.ca_file), timeout=10)
                    assert (r.status_code, r.content) == (200, b"ok")
            assert proxy.runtime.server.pool.opened == 1
    finally:
        origin.close()
    assert len(origin.connections) == 1  # dialled for the CONNECT, then used by the exchange


def test_ignore_hosts_matches_the_sni_too(
    tmp_path: Path, server_tls_context: ssl.SSLContext
) -> None:
    origin = RecordingOrigin(tls=server_tls_context)
    try:
        with live_proxy(tmp_path, ignore_hosts=re.compile(r"^named\.test$")) as proxy:
            with proxy.connect() as raw:
                send_connect(raw, f"127.0.0.1:{origin.server.port}")  # an address, not a name
                assert read_head(raw).startswith(b"HTTP/1.1 200 ")
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                with ctx.wrap_socket(raw, server_hostname="named.test") as tls:
                    der = tls.getpeercert(binary_form=True)
                    tls.sendall(b"GET /raw HTTP/1.1\r\nHost: named.test\r\n\r\n")
                    assert read_response(tls)[0] == 200
            (flow,) = proxy.finished(1)
            ours = x509.load_pem_x509_certificate(proxy.ca_file.read_bytes()).subject
    finally:
        origin.close()
    assert der is not None and x509.load_der_x509_certificate(der).issuer != ours
    assert flow.request.method == "CONNECT" and flow.response is not None
    assert flow.response.body.size > 0  # relayed untouched, counted
