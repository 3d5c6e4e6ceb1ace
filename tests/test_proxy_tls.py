"""CONNECT: TLS interception with the proxy's own CA, plain HTTP in a tunnel, raw tunnels."""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
from pathlib import Path

import httpx
import pytest
import requests

from tests.conftest import run_curl
from tests.proxy_fixtures import LiveProxy, live_proxy, read_head, read_response
from tests.servers import EchoServer


@pytest.fixture
def proxy_options(upstream_ca_file: Path) -> dict[str, object]:
    return {"upstream_ca": upstream_ca_file}


def curl(proxy: LiveProxy, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_curl("-x", proxy.url, *args)


def curl_status(proxy: LiveProxy, url: str) -> bytes:
    """What curl printed for ``url`` through the proxy (trusting its CA), then the status."""
    return curl(proxy, "--cacert", str(proxy.ca_file), "-w", "%{http_code}", url).stdout


def test_curl_https_is_intercepted(proxy: LiveProxy, tls_echo_server: EchoServer) -> None:
    url = f"https://localhost:{tls_echo_server.port}/status/201"
    out = curl(proxy, "--cacert", str(proxy.ca_file), url)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"status 201\n"
    (flow,) = proxy.finished(1)
    assert flow.request.scheme == "https" and flow.request.url == url
    assert flow.response is not None and flow.response.status_code == 201
    tls = flow.tls
    assert tls is not None
    assert tls.sni == "localhost" and tls.client_version and tls.client_version.startswith("TLS")
    assert tls.upstream_version and tls.upstream_cipher  # (the test server offers no ALPN)
    assert tls.upstream_cert_issuer and "trustme" in tls.upstream_cert_issuer.lower()


def test_requests_session_keeps_the_tunnel_alive(
    proxy: LiveProxy, tls_echo_server: EchoServer
) -> None:
    with requests.Session() as s:
        s.proxies = {"https": proxy.url}
        url = f"https://localhost:{tls_echo_server.port}/echo"
        ca = str(proxy.ca_file)  # per request: REQUESTS_CA_BUNDLE would override Session.verify
        bodies = [
            s.post(url, data=f"n={i}", timeout=10, verify=ca).json()["body"] for i in range(4)
        ]
    assert bodies == ["n=0", "n=1", "n=2", "n=3"]
    flows = proxy.finished(4)
    assert len({f.client_addr for f in flows}) == 1
    assert proxy.runtime.server.pool.opened == 1


def test_httpx_https(proxy: LiveProxy, tls_echo_server: EchoServer) -> None:
    ctx = ssl.create_default_context(cafile=str(proxy.ca_file))
    with httpx.Client(proxy=proxy.url, verify=ctx, timeout=10) as client:
        r = client.get(f"https://127.0.0.1:{tls_echo_server.port}/chunked/5000")
    assert r.status_code == 200 and r.content == b"z" * 5000
    (flow,) = proxy.finished(1)
    assert flow.tls is not None and flow.tls.sni is None  # clients send no SNI for IPs


def test_plain_http_inside_connect(proxy: LiveProxy, echo_server: EchoServer) -> None:
    out = curl(proxy, "--proxytunnel", f"{echo_server.url}/status/202")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"status 202\n"
    (flow,) = proxy.finished(1)
    assert flow.request.scheme == "http" and flow.request.port == echo_server.port


def test_ignore_hosts_tunnels_tls_untouched(
    tmp_path: Path, tls_echo_server: EchoServer, upstream_ca_file: Path
) -> None:
    with live_proxy(tmp_path, ignore_hosts=__import__("re").compile(r"^localhost$")) as proxy:
        url = f"https://localhost:{tls_echo_server.port}/status/200"
        # The client sees the upstream's own certificate: trusted with the upstream CA...
        ok = curl(proxy, "--cacert", str(upstream_ca_file), url)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout == b"status 200\n"
        # ...and not with ours, since nothing was intercepted.
        bad = curl(proxy, "--cacert", str(proxy.ca_file), url)
        assert bad.returncode != 0
        flows = proxy.finished(2)
    assert {f.request.method for f in flows} == {"CONNECT"}
    assert flows[0].request.url == f"localhost:{tls_echo_server.port}"
    assert flows[0].response is not None and flows[0].response.body.size > 0


def test_untrusted_upstream_certificate_gives_502(
    tmp_path: Path, tls_echo_server: EchoServer
) -> None:
    with live_proxy(tmp_path) as proxy:  # no --upstream-ca: the trustme CA is unknown
        out = curl_status(proxy, f"https://localhost:{tls_echo_server.port}/")
        (flow,) = proxy.finished(1)
    assert out.endswith(b"502")
    assert b"SSLCertVerificationError" in out and b"during tls" in out
    assert b"--upstream-ca FILE" in out and b"--insecure" in out  # what to do
    assert flow.error is not None
    assert (flow.error.exc_class, flow.error.phase) == ("SSLCertVerificationError", "tls")
    assert "--upstream-ca" in flow.error.message


def test_https_to_a_plain_http_upstream_says_so(proxy: LiveProxy, echo_server: EchoServer) -> None:
    out = curl_status(proxy, f"https://127.0.0.1:{echo_server.port}/")
    (flow,) = proxy.finished(1)
    assert out.endswith(b"502")
    assert b"the server did not answer with TLS: is it plain HTTP on that port?" in out
    assert flow.error is not None and flow.error.phase == "tls"
    assert flow.error.exc_class == "SSLError"


def test_insecure_skips_upstream_verification(tmp_path: Path, tls_echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, insecure=True) as proxy:
        out = curl(
            proxy,
            "--cacert",
            str(proxy.ca_file),
            f"https://localhost:{tls_echo_server.port}/status/200",
        )
        (flow,) = proxy.finished(1)
    assert out.stdout == b"status 200\n"
    assert flow.tls is not None and flow.tls.upstream_cert_subject is not None


def test_curl_learns_of_a_refused_port_from_the_connect(proxy: LiveProxy) -> None:
    """CONNECT dials first: the refusal is the CONNECT's answer, before any TLS."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        out = curl(
            proxy, "--cacert", str(proxy.ca_file), "-w", "%{http_connect}", f"https://127.0.0.1:{port}/"
        )  # fmt: skip
    assert out.returncode != 0 and out.stdout.endswith(b"502")
    (flow,) = proxy.finished(1)
    assert flow.request.method == "CONNECT" and flow.error is not None
    assert (flow.error.exc_class, flow.error.phase) == ("ConnectionRefusedError", "connect")


def test_tls_to_the_plain_port_gets_a_clear_400(proxy: LiveProxy) -> None:
    """A client configured with https://proxy sends a ClientHello first: say what to fix."""
    with proxy.connect() as raw:
        raw.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40)
        status, headers, body = read_response(raw)
        assert raw.recv(1) == b""
    assert status == 400 and headers["connection"] == "close"
    assert b"TLS handshake" in body and b"http://HOST:PORT" in body


def test_connect_then_garbage_is_relayed_raw(proxy: LiveProxy, raw_server) -> None:  # type: ignore[no-untyped-def]
    def echo_bytes(conn: socket.socket) -> None:
        conn.sendall(conn.recv(100).upper())

    peer = raw_server(echo_bytes)
    with proxy.connect() as s:
        s.sendall(f"CONNECT 127.0.0.1:{peer.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert read_head(s).startswith(b"HTTP/1.1 200 ")
        s.sendall(b"\x00\x01not http at all")
        assert s.recv(100) == b"\x00\x01NOT HTTP AT ALL"
    (flow,) = proxy.finished(1)
    assert flow.request.method == "CONNECT"


def test_a_client_refusing_our_certificate_is_recorded(
    proxy: LiveProxy, tls_echo_server: EchoServer
) -> None:
    url = f"https://localhost:{tls_echo_server.port}/"
    out = curl(proxy, url)  # the system trust store does not know the inspector CA
    assert out.returncode != 0
    (flow,) = proxy.finished(1)
    assert flow.request.method == "CONNECT" and flow.error is not None
    assert flow.error.phase == "client" and "SSL" in flow.error.exc_class
    assert "does it trust the inspector CA" in flow.error.message
    assert flow.tls is not None and flow.tls.sni == "localhost"


def test_a_client_dropping_the_handshake_is_recorded_with_the_likely_cause(
    proxy: LiveProxy,
) -> None:
    # A ClientHello from a real TLS client, then a reset instead of an alert: what
    # clients that do not trust the proxy's certificate often do.
    hello_maker = ssl.create_default_context().wrap_bio(
        ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="example.test"
    )
    with pytest.raises(ssl.SSLWantReadError):
        hello_maker.do_handshake()
    with socket.create_server(("127.0.0.1", 0)) as target, proxy.connect() as s:
        where = f"127.0.0.1:{target.getsockname()[1]}"  # reachable: CONNECT dials first
        s.sendall(f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n\r\n".encode())
        assert read_head(s).startswith(b"HTTP/1.1 200")
        s.sendall(outgoing.read())
        s.settimeout(10)
        assert s.recv(5)[:1] == b"\x16"  # the proxy's ServerHello: a handshake record
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    (flow,) = proxy.finished(1)
    assert flow.request.method == "CONNECT" and flow.error is not None
    assert (flow.error.phase, flow.error.exc_class) == ("client", "ConnectionResetError")
    assert flow.error.message == (
        "the client closed the connection during the TLS handshake: "
        "does it trust the inspector CA? see `inspector ca`"
    )
