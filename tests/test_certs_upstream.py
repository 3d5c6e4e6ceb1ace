"""The proxy's client-side TLS context for upstream servers (inspector.proxy.upstream)."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from inspector.config import Config
from inspector.proxy.upstream import make_upstream_context

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def chain_ca() -> trustme.CA:
    """A root whose leaves are issued by an intermediate, as public sites' are."""
    return trustme.CA()


@pytest.fixture(scope="module")
def chain_server_context(chain_ca: trustme.CA) -> ssl.SSLContext:
    leaf = chain_ca.create_child_ca().issue_cert(HOST)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)  # sends the leaf and the intermediate
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


@pytest.fixture
def tls_server(chain_server_context: ssl.SSLContext) -> Iterator[int]:
    """A loopback TLS server answering each handshake with one byte, until closed."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(10)

    def serve() -> None:
        for _ in range(20):  # bounded: tests make a handful of handshakes
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.settimeout(10)
            try:
                with chain_server_context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"!")
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        listener.close()
        thread.join(timeout=10)


def handshake(ctx: ssl.SSLContext, port: int) -> bytes:
    """A TLS handshake to the test server as the proxy makes it; the byte it sends."""
    return handshake_alpn(ctx, port)[0]


def handshake_alpn(ctx: ssl.SSLContext, port: int) -> tuple[bytes, str | None]:
    with socket.create_connection((HOST, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            return tls.recv(1), tls.selected_alpn_protocol()


def test_insecure_context_skips_verification_and_loads_no_trust_store(tls_server: int) -> None:
    ctx = make_upstream_context(Config(insecure=True))
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 0  # nothing to search per handshake
    assert handshake(ctx, tls_server) == b"!"  # an unknown CA is accepted


def test_verified_context_refuses_an_unknown_ca(tls_server: int) -> None:
    ctx = make_upstream_context(Config())
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ctx, tls_server)


def test_verified_context_trusts_the_upstream_ca_through_an_intermediate(
    tls_server: int, chain_ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "upstream-ca.pem"
    chain_ca.cert_pem.write_to_path(str(ca_file))
    ctx = make_upstream_context(Config(upstream_ca=ca_file))
    assert handshake(ctx, tls_server) == b"!"


@pytest.mark.skipif(
    not (ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().capath),
    reason="no system trust store on this machine",
)
def test_verified_context_loads_the_system_trust_store() -> None:
    ctx = make_upstream_context(Config())
    paths = ssl.get_default_verify_paths()
    if paths.cafile:  # a bundle is loaded up front; a directory is searched by hash
        assert ctx.cert_store_stats()["x509_ca"] > 0


def test_both_contexts_offer_only_http11_by_alpn(
    tls_server: int, chain_ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "upstream-ca.pem"
    chain_ca.cert_pem.write_to_path(str(ca_file))
    for config in (Config(insecure=True), Config(upstream_ca=ca_file)):
        assert handshake_alpn(make_upstream_context(config), tls_server) == (b"!", "http/1.1")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_verified_context_searches_every_directory_of_ssl_cert_dir(
    tls_server: int, chain_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_DIR=a:b, the root hashed into b, as update-ca-certificates would."""
    empty, hashed = tmp_path / "a", tmp_path / "b"
    empty.mkdir()
    hashed.mkdir()
    root = tmp_path / "root.pem"
    chain_ca.cert_pem.write_to_path(str(root))
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(root)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    (hashed / f"{subject_hash}.0").write_bytes(root.read_bytes())
    monkeypatch.setenv("SSL_CERT_DIR", f"{empty}{os.pathsep}{hashed}")
    assert handshake(make_upstream_context(Config()), tls_server) == b"!"


@pytest.mark.parametrize("insecure", [True, False])
def test_sslkeylogfile_is_honoured(
    insecure: bool,
    tls_server: int,
    chain_ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    ca_file = tmp_path / "upstream-ca.pem"
    chain_ca.cert_pem.write_to_path(str(ca_file))
    ctx = make_upstream_context(Config(insecure=insecure, upstream_ca=ca_file))
    assert handshake(ctx, tls_server) == b"!"
    assert b"CLIENT_TRAFFIC_SECRET" in keylog.read_bytes()
