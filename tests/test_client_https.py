"""protocol.HTTPSConnection: verification by default, host names, client certificates, tunnels."""

from __future__ import annotations

import json
import ssl

import pytest
import trustme

import protocol
from protocol import HTTPSConnection
from tests.client_fixtures import connect_forwarder, ok_response, read_raw_request


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


def recording_tls_server(raw_server, ctx: ssl.SSLContext, seen: list):
    """A keep-alive TLS server recording (ALPN, peer certificate, request) per request."""

    def handler(sock):
        rest = b""
        while True:
            request, rest = read_raw_request(sock, rest)
            if request is None:
                return
            seen.append((sock.selected_alpn_protocol(), sock.getpeercert(), request))
            sock.sendall(ok_response(b"secure"))

    return raw_server(handler, tls=ctx)


def test_get_over_tls_with_a_context(tls_echo_server, client_tls_context):
    conn = HTTPSConnection("127.0.0.1", tls_echo_server.port, context=client_tls_context, timeout=5)
    for _ in range(3):
        conn.request("GET", "/echo")
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["path"] == "/echo"
    assert len(tls_echo_server.received) == 3
    assert isinstance(conn.sock, ssl.SSLSocket)
    conn.close()


def test_localhost_name_verifies(tls_echo_server, client_tls_context):
    conn = HTTPSConnection(
        f"localhost:{tls_echo_server.port}", context=client_tls_context, timeout=5
    )
    conn.request("GET", "/bytes/3")
    assert conn.getresponse().read() == b"xxx"
    conn.close()


def test_untrusted_ca_fails_by_default(tls_echo_server):
    conn = HTTPSConnection("127.0.0.1", tls_echo_server.port, timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        conn.request("GET", "/")
    assert conn.sock is None
    assert tls_echo_server.received == []


def test_default_context_verifies_against_the_system_store(
    raw_server, upstream_ca, upstream_ca_file, monkeypatch
):
    """No context given: create_default_context() (here trusting the test CA) + ALPN http/1.1."""
    monkeypatch.setenv("SSL_CERT_FILE", str(upstream_ca_file))
    ctx = server_context(upstream_ca, "localhost", "127.0.0.1")
    ctx.set_alpn_protocols(["http/1.1"])
    seen: list = []
    server = recording_tls_server(raw_server, ctx, seen)
    conn = HTTPSConnection("127.0.0.1", server.port, timeout=5)
    assert conn._context.verify_mode == ssl.CERT_REQUIRED
    assert conn._context.check_hostname
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"secure"
    assert conn.sock.selected_alpn_protocol() == "http/1.1"
    assert seen[0][0] == "http/1.1"
    conn.close()


def test_wrong_host_name_fails_and_check_hostname_false_allows_it(
    raw_server, upstream_ca, client_tls_context
):
    ctx = server_context(upstream_ca, "other.test")
    seen: list = []
    server = recording_tls_server(raw_server, ctx, seen)
    for host in ("localhost", "127.0.0.1"):
        conn = HTTPSConnection(host, server.port, context=client_tls_context, timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            conn.request("GET", "/")
    assert seen == []

    relaxed = ssl.create_default_context()
    upstream_ca.configure_trust(relaxed)
    with pytest.warns(DeprecationWarning, match="check_hostname are deprecated"):
        conn2 = HTTPSConnection(
            "127.0.0.1", server.port, context=relaxed, check_hostname=False, timeout=5
        )
    conn2.request("GET", "/")
    assert conn2.getresponse().read() == b"secure"
    conn2.close()


def test_check_hostname_without_verification_is_refused():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        pytest.raises(ValueError, match="check_hostname needs a SSL context"),
        pytest.warns(DeprecationWarning),
    ):
        HTTPSConnection("127.0.0.1", context=ctx, check_hostname=True)


def test_sni_names_the_host(raw_server, upstream_ca, client_tls_context):
    ctx = server_context(upstream_ca, "localhost")
    names: list = []
    ctx.sni_callback = lambda sslobj, name, context: names.append(name)
    server = recording_tls_server(raw_server, ctx, [])
    conn = HTTPSConnection("localhost", server.port, context=client_tls_context, timeout=5)
    conn.request("GET", "/")
    conn.getresponse().read()
    assert names == ["localhost"]
    conn.close()


@pytest.fixture
def client_cert_files(upstream_ca, tmp_path):
    cert = upstream_ca.issue_cert("client.test")
    key_file, cert_file = tmp_path / "client.key", tmp_path / "client.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    return str(key_file), str(cert_file)


@pytest.fixture
def mutual_tls_server(raw_server, upstream_ca):
    ctx = server_context(upstream_ca, "localhost", "127.0.0.1")
    ctx.verify_mode = ssl.CERT_REQUIRED
    upstream_ca.configure_trust(ctx)
    seen: list = []
    server = recording_tls_server(raw_server, ctx, seen)
    return server, seen


def test_client_certificate_from_key_and_cert_files(
    mutual_tls_server, client_cert_files, upstream_ca
):
    server, seen = mutual_tls_server
    key_file, cert_file = client_cert_files
    ctx = ssl.create_default_context()
    upstream_ca.configure_trust(ctx)
    # Deprecated as in http.client 3.11 (a context with load_cert_chain is the way now).
    with pytest.warns(DeprecationWarning, match="key_file, cert_file and check_hostname"):
        conn = HTTPSConnection(
            "127.0.0.1", server.port, context=ctx, key_file=key_file, cert_file=cert_file, timeout=5
        )
    assert (conn.key_file, conn.cert_file) == (key_file, cert_file)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"secure"
    subject_alt_names = seen[0][1]["subjectAltName"]
    assert ("DNS", "client.test") in subject_alt_names
    conn.close()


def test_server_requiring_a_client_certificate_refuses_without_one(
    mutual_tls_server, client_tls_context
):
    server, seen = mutual_tls_server
    conn = HTTPSConnection("127.0.0.1", server.port, context=client_tls_context, timeout=5)
    with pytest.raises(OSError):  # the TLS alert arrives at the handshake or the first read
        conn.request("GET", "/")
        conn.getresponse()
    assert seen == []
    conn.close()


def test_missing_client_key_file_is_a_clear_error(tmp_path, client_tls_context):
    with pytest.raises(FileNotFoundError), pytest.warns(DeprecationWarning):
        HTTPSConnection(
            "127.0.0.1",
            context=client_tls_context,
            cert_file=str(tmp_path / "nope.pem"),
            key_file=str(tmp_path / "nope.key"),
        )


def test_https_through_a_connect_tunnel(raw_server, tls_echo_server, client_tls_context):
    seen_connects: list[bytes] = []
    proxy = raw_server(connect_forwarder(seen_connects))
    conn = HTTPSConnection("127.0.0.1", proxy.port, context=client_tls_context, timeout=5)
    conn.set_tunnel("localhost", tls_echo_server.port)
    conn.request("GET", "/echo")
    got = json.loads(conn.getresponse().read())
    assert ["Host", f"localhost:{tls_echo_server.port}"] in got["headers"]
    assert seen_connects[0].startswith(b"CONNECT localhost:%d HTTP/1.1" % tls_echo_server.port)
    # the certificate was checked against the tunnel's host, not the proxy's
    assert conn.sock.server_hostname == "localhost"
    conn.close()


def test_https_keywords_are_keyword_only():
    with pytest.raises(TypeError):
        HTTPSConnection("127.0.0.1", 443, None, None)  # type: ignore[misc]
    assert protocol.HTTPSConnection.default_port == 443
