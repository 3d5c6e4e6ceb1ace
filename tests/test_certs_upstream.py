"""The proxy's client-side TLS context for upstream servers (inspector.proxy.upstream)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

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


SYSTEM_STORE = ssl.get_default_verify_paths()  # honours SSL_CERT_FILE / SSL_CERT_DIR
X509_V_ERR_CERT_SIGNATURE_FAILURE = 7  # the issuer was found; its signature does not match
X509_V_ERR_NO_ISSUER = 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: no such issuer


def _a_system_root(location: Path) -> x509.Certificate:
    """A CA certificate of the system store (an EC one when there is one: cheap to imitate)."""
    if location.is_dir():  # the hashed names OpenSSL looks up
        pems = [p.read_bytes() for p in sorted(location.glob("*.0"))]
    else:
        end = b"-----END CERTIFICATE-----"
        pems = [block + end for block in location.read_bytes().split(end)[:-1]]
    roots = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old roots with negative serial numbers
        for pem in pems:
            try:
                roots.append(x509.load_pem_x509_certificate(pem))
            except ValueError:
                continue  # one the cryptography package refuses; OpenSSL may still use it
    assert roots, f"no certificate in {location}"
    ec_roots = [r for r in roots if isinstance(r.public_key(), ec.EllipticCurvePublicKey)]
    return (ec_roots or roots)[0]


def _forged_server_context(root: x509.Certificate, tmp: Path) -> ssl.SSLContext:
    """A server whose leaf names ``root`` as its issuer but is signed by a key of its own."""
    root_key = root.public_key()
    key = (
        ec.generate_private_key(root_key.curve)
        if isinstance(root_key, ec.EllipticCurvePublicKey)
        else rsa.generate_private_key(65537, 2048)  # the signature type must match the root's
    )
    now = dt.datetime.now(dt.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address(HOST))]), False)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = tmp / "forged.pem", tmp / "forged-key.pem"
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key_file)
    return ctx


@pytest.mark.parametrize("shape", ["bundle", "directory"])
def test_verified_context_loads_the_system_trust_store(  # type: ignore[no-untyped-def]
    shape: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw_server
) -> None:
    """The system's roots are found whether the store is a bundle or a hashed directory.

    The server's leaf claims a system root as its issuer: a context that searched the store
    finds that root and fails on the signature; one that did not fails to find an issuer.
    """
    location = SYSTEM_STORE.cafile if shape == "bundle" else SYSTEM_STORE.capath
    if not location:
        pytest.skip(f"no system trust store {shape} on this machine")
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    forged = _forged_server_context(_a_system_root(Path(location)), tmp_path)
    peer = raw_server(lambda conn: conn.sendall(b"!"), tls=forged)

    def verify_code(cafile: Path | str, capath: Path | str) -> int:
        monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
        monkeypatch.setenv("SSL_CERT_DIR", str(capath))
        ctx = make_upstream_context(Config())
        with pytest.raises(ssl.SSLCertVerificationError) as failed:
            handshake(ctx, peer.port)
        return failed.value.verify_code

    if shape == "bundle":  # only the bundle: the directory points nowhere
        assert verify_code(location, nowhere) == X509_V_ERR_CERT_SIGNATURE_FAILURE
    else:  # only the directory: no bundle file
        assert verify_code(nowhere / "none.pem", location) == X509_V_ERR_CERT_SIGNATURE_FAILURE
    # and the check tells the difference: with neither, the issuer is not found at all
    assert verify_code(nowhere / "none.pem", nowhere) == X509_V_ERR_NO_ISSUER


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
