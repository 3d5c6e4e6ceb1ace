"""The local CA: files on disk, the certificates it mints, and real TLS clients trusting them."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

import certs
from certs import (
    CAError,
    CertificateAuthority,
    CertStore,
    HostError,
    LeafMinter,
    names_in_certificate,
    normalize_host,
)
from certs.ca import CAKey
from tests.certs_fixtures import race_for_ca
from tests.conftest import needs_curl, needs_ipv6
from tests.servers import RawServer, read_request_head

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")

ServerFactory = Callable[..., RawServer]
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("ca") / "confdir")


@pytest.fixture(scope="module")
def minter(ca: CertificateAuthority) -> LeafMinter:
    return LeafMinter(ca)


@pytest.fixture
def store(ca: CertificateAuthority) -> CertStore:
    return CertStore(ca)


def _answer_ok(conn: socket.socket) -> None:
    read_request_head(conn)
    conn.sendall(OK_RESPONSE)


@pytest.fixture
def tls_server(raw_server: ServerFactory) -> ServerFactory:
    """Factory: a loopback HTTPS server on ``host`` presenting ``ctx``."""

    def start(ctx: ssl.SSLContext, host: str = "127.0.0.1") -> RawServer:
        return raw_server(_answer_ok, host=host, tls=ctx)

    return start


def _client_get(ca: CertificateAuthority, host: str, port: int, server_hostname: str) -> str:
    """One HTTPS GET with full verification; returns the negotiated ALPN protocol."""
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    with socket.create_connection((host, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
            assert data == OK_RESPONSE
            return tls.selected_alpn_protocol()


def _openssl_verify(
    ca: CertificateAuthority, leaf_pem: bytes, tmp_path: Path, *check: str
) -> subprocess.CompletedProcess[str]:
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(leaf_pem)
    cmd = ["openssl", "verify", "-CAfile", str(ca.cert_path), "-purpose", "sslserver", *check]
    return subprocess.run([*cmd, str(leaf)], capture_output=True, text=True, timeout=30)


def _write_ca_files(
    confdir: Path, cert: x509.Certificate, key: CAKey, *, key_mode: int = 0o600
) -> None:
    confdir.mkdir(mode=0o700, exist_ok=True)
    (confdir / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = confdir / "ca-key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(key_mode)


def _self_signed(key: CAKey, *, days: int, ca: bool = True) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now + timedelta(days=days))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    return builder.sign(key, hashes.SHA256())


def _ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    return cert.extensions.get_extension_for_class(cls)


# --- the CA on disk ----------------------------------------------------------------------------


def test_first_run_creates_private_dir_key_cert_and_der(tmp_path: Path) -> None:
    confdir = tmp_path / "nested" / "confdir"
    ca = CertificateAuthority.load_or_create(confdir)
    assert confdir.stat().st_mode & 0o777 == 0o700
    assert ca.key_path == confdir / "ca-key.pem" and ca.cert_path == confdir / "ca.pem"
    assert ca.key_path.stat().st_mode & 0o777 == 0o600
    assert ca.cert_path.read_bytes() == ca.cert_pem
    der = (confdir / "ca.crt").read_bytes()
    assert x509.load_der_x509_certificate(der) == ca.certificate
    assert not [p.name for p in confdir.iterdir() if p.name.endswith(".tmp")]


def test_existing_ca_is_reused(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "c")
    key_bytes = first.key_path.read_bytes()
    second = CertificateAuthority.load_or_create(tmp_path / "c")
    assert second.fingerprint_sha256 == first.fingerprint_sha256
    assert second.key_path.read_bytes() == key_bytes


def test_missing_der_copy_is_rewritten(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "c")
    ca.der_path.unlink()
    CertificateAuthority.load_or_create(tmp_path / "c")
    assert ca.der_path.read_bytes() == ca.certificate.public_bytes(serialization.Encoding.DER)


def test_fingerprint_is_uppercase_colon_hex_sha256(ca: CertificateAuthority) -> None:
    expected = ca.certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert ca.fingerprint_sha256.replace(":", "") == expected
    assert len(ca.fingerprint_sha256.split(":")) == 32


def test_ca_certificate_is_a_proper_ca(ca: CertificateAuthority) -> None:
    cert = ca.certificate
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn.startswith("http-inspector local CA (") and cn.endswith(")") and len(cn) <= 64
    org = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert org == "http-inspector"
    cert.verify_directly_issued_by(cert)  # self-signed, signature valid
    now = datetime.now(UTC)
    assert cert.not_valid_before_utc <= now - timedelta(hours=23)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=2 * 365) < lifetime < timedelta(days=4 * 365)


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("box", "http-inspector local CA (box)"),
        ("", "http-inspector local CA (localhost)"),
        ("h" * 80, "http-inspector local CA (" + "h" * 38 + ")"),
    ],
)
def test_ca_subject_names_this_machine_within_64_chars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostname: str, expected: str
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    cert = CertificateAuthority.load_or_create(tmp_path / "c").certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == expected
    assert len(expected) <= 64


def test_concurrent_first_runs_make_exactly_one_ca(tmp_path: Path) -> None:
    # Separate interpreters (spawn), released together by a barrier, once per confdir.
    mp = multiprocessing.get_context("spawn")
    confdirs = [tmp_path / f"race{n}" for n in range(3)]
    barrier, results = mp.Barrier(4), mp.Queue()
    procs = [mp.Process(target=race_for_ca, args=(confdirs, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=90) for _ in range(4 * len(confdirs))]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    for confdir in confdirs:
        on_disk = CertificateAuthority.load_or_create(confdir).fingerprint_sha256
        assert [fp for d, fp in outcomes if d == str(confdir)] == [on_disk] * 4
        assert sorted(p.name for p in confdir.iterdir()) == [
            ".ca.lock",
            "ca-key.pem",
            "ca.crt",
            "ca.pem",
        ]


# --- broken CA files give a clear CAError and are never overwritten ---------------------------


@pytest.fixture
def made(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path / "made")


def _assert_refused(confdir: Path, *needles: str) -> str:
    before = {p.name: p.read_bytes() for p in confdir.iterdir() if p.is_file()}
    with pytest.raises(CAError) as info:
        CertificateAuthority.load_or_create(confdir)
    message = str(info.value)
    for needle in needles:
        assert needle in message
    after = {p.name: p.read_bytes() for p in confdir.iterdir() if p.is_file()}
    assert after == before
    return message


def test_truncated_key_is_refused(made: CertificateAuthority) -> None:
    made.key_path.write_bytes(made.key_path.read_bytes()[:60])
    _assert_refused(made.key_path.parent, str(made.key_path), "not a valid PEM private key", "move")


def test_corrupt_certificate_is_refused(made: CertificateAuthority) -> None:
    made.cert_path.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    _assert_refused(made.cert_path.parent, str(made.cert_path), "not a valid PEM certificate")


def test_key_of_another_ca_is_refused(made: CertificateAuthority, tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    made.key_path.write_bytes(other.key_path.read_bytes())
    _assert_refused(made.key_path.parent, str(made.key_path), "does not match", "move")


@pytest.mark.parametrize("remove", ["ca-key.pem", "ca.pem"])
def test_only_one_half_present_is_refused(made: CertificateAuthority, remove: str) -> None:
    confdir = made.cert_path.parent
    (confdir / remove).unlink()
    message = _assert_refused(confdir, str(confdir / remove), "is missing", "move")
    assert "to create a new CA" in message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_readable_by_others_is_refused(made: CertificateAuthority, mode: int) -> None:
    made.key_path.chmod(mode)
    _assert_refused(made.key_path.parent, f"chmod 600 {made.key_path}")


def test_encrypted_key_is_refused(made: CertificateAuthority) -> None:
    key = serialization.load_pem_private_key(made.key_path.read_bytes(), None)
    made.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    _assert_refused(made.key_path.parent, "is encrypted", "openssl pkey")


def test_certificate_that_is_not_a_ca_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _write_ca_files(tmp_path / "c", _self_signed(key, days=30, ca=False), key)
    _assert_refused(tmp_path / "c", "is not a CA certificate")


def test_expired_ca_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _write_ca_files(tmp_path / "c", _self_signed(key, days=-1), key)
    _assert_refused(tmp_path / "c", "expired on", "create a new CA")


def test_ca_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c" / "ca.pem").mkdir(parents=True)
    with pytest.raises(CAError, match=r"ca\.pem is not a regular file"):
        CertificateAuthority.load_or_create(tmp_path / "c")


def test_confdir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CAError, match="is not a directory"):
        CertificateAuthority.load_or_create(tmp_path / "afile")


# --- leaf certificates -------------------------------------------------------------------------


def _leaf(store: CertStore, host: str, extra_sans: Sequence[str] = ()) -> x509.Certificate:
    store.server_context(host, extra_sans)
    return x509.load_pem_x509_certificate(store.leaf_pem(host))


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = _ext(cert, x509.SubjectAlternativeName).value
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return san.get_values_for_type(x509.DNSName), ips


def test_leaf_for_a_dns_name_has_the_server_extensions(
    ca: CertificateAuthority, store: CertStore
) -> None:
    leaf = _leaf(store, "Example.TEST")
    assert _sans(leaf) == (["example.test"], [])
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.test"
    assert leaf.issuer == ca.certificate.subject
    leaf.verify_directly_issued_by(ca.certificate)
    bc = _ext(leaf, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = _ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert _ext(leaf, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    ca_ski = _ext(ca.certificate, x509.SubjectKeyIdentifier).value
    assert _ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski.digest
    assert _ext(leaf, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        leaf.public_key()
    )


def test_leaf_validity_is_backdated_and_at_most_397_days(store: CertStore) -> None:
    leaf = _leaf(store, "validity.test")
    now = datetime.now(UTC)
    assert leaf.not_valid_before_utc <= now - timedelta(hours=23)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= timedelta(days=397)
    assert leaf.not_valid_after_utc > now + timedelta(days=300)


@pytest.mark.parametrize(
    ("host", "ips"), [("127.0.0.1", ["127.0.0.1"]), ("[::1]", ["::1"]), ("::1", ["::1"])]
)
def test_leaf_for_an_ip_has_only_an_ip_san(store: CertStore, host: str, ips: list[str]) -> None:
    assert _sans(_leaf(store, host)) == ([], ips)


def test_extra_sans_are_added_once_and_unusable_ones_dropped(store: CertStore) -> None:
    extra = ["www.site.test", "SITE.test", "10.0.0.1", "bad name", "", "*.site.test", "site.test"]
    leaf = _leaf(store, "site.test", extra)
    assert _sans(leaf) == (["site.test", "www.site.test", "*.site.test"], ["10.0.0.1"])


def test_names_copied_from_a_real_server_certificate(
    store: CertStore, upstream_ca: trustme.CA
) -> None:
    real = upstream_ca.issue_cert("origin.test", "*.origin.test", "192.0.2.7")
    der = x509.load_pem_x509_certificate(real.cert_chain_pems[0].bytes()).public_bytes(
        serialization.Encoding.DER
    )
    names = names_in_certificate(der)
    assert names == ["origin.test", "*.origin.test", "192.0.2.7"]
    leaf = _leaf(store, "www.origin.test", names)
    assert _sans(leaf) == (["www.origin.test", "origin.test", "*.origin.test"], ["192.0.2.7"])
    assert names_in_certificate(b"not a certificate") == []


def test_names_from_a_certificate_without_san_fall_back_to_its_cn() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, days=30, ca=False)
    assert names_in_certificate(cert.public_bytes(serialization.Encoding.DER)) == ["test CA"]


def test_long_host_common_name_is_truncated_to_64(store: CertStore) -> None:
    host = ".".join(["a" * 40, "b" * 40, "example"])
    leaf = _leaf(store, host)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == host[:64]
    assert _sans(leaf) == ([host], [])


def test_leaves_share_one_key_that_is_not_the_cas(
    ca: CertificateAuthority, store: CertStore
) -> None:
    leaves = [_leaf(store, f"h{i}.serials.test") for i in range(40)]
    assert len({leaf.serial_number for leaf in leaves}) == 40
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    keys = {leaf.public_key().public_bytes(*fmt) for leaf in leaves}
    assert len(keys) == 1
    assert keys != {ca.certificate.public_key().public_bytes(*fmt)}


def test_leaf_never_outlives_the_ca(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _write_ca_files(tmp_path / "c", _self_signed(key, days=30), key)
    short = CertificateAuthority.load_or_create(tmp_path / "c")
    leaf = _leaf(CertStore(short), "short.test")
    assert leaf.not_valid_after_utc == short.certificate.not_valid_after_utc


@needs_openssl
def test_a_user_supplied_rsa_ca_without_key_ids_signs_verifiable_leaves(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_ca_files(tmp_path / "c", _self_signed(key, days=365), key)
    rsa_ca = CertificateAuthority.load_or_create(tmp_path / "c")
    pem = CertStore(rsa_ca).leaf_pem("rsa.test")
    result = _openssl_verify(rsa_ca, pem, tmp_path, "-verify_hostname", "rsa.test")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_openssl
@pytest.mark.parametrize(
    ("host", "check"),
    [
        ("localhost", ["-verify_hostname", "localhost"]),
        ("example.test", ["-verify_hostname", "example.test"]),
        ("127.0.0.1", ["-verify_ip", "127.0.0.1"]),
        ("::1", ["-verify_ip", "::1"]),
        ("*.wild.test", ["-verify_hostname", "any.wild.test"]),
    ],
)
def test_openssl_verify_accepts_minted_leaves(
    ca: CertificateAuthority, store: CertStore, tmp_path: Path, host: str, check: list[str]
) -> None:
    result = _openssl_verify(ca, store.leaf_pem(host), tmp_path, *check)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


@needs_openssl
def test_openssl_verify_rejects_a_leaf_for_another_name(
    ca: CertificateAuthority, store: CertStore, tmp_path: Path
) -> None:
    result = _openssl_verify(
        ca, store.leaf_pem("one.test"), tmp_path, "-verify_hostname", "two.test"
    )
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("LocalHost.", "localhost"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("*.Example.test", "*.example.test"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("under_score.test", "under_score.test"),
    ],
)
def test_host_names_are_normalized(raw: str, normal: str) -> None:
    assert normalize_host(raw) == normal


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        ".",
        "a b.test",
        "foo..test",
        "foo.test..",
        "*",
        "*.*.test",
        "a.*.test",
        "x" * 64 + ".test",
        "-",
    ],
)
def test_names_no_certificate_can_hold_raise_host_error(store: CertStore, bad: str) -> None:
    with pytest.raises(HostError) as info:
        store.server_context(bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=string.ascii_letters + string.digits + "-_.*[]:% ", max_size=40),
        st.text(max_size=20),
        st.ip_addresses().map(str),
    )
)
def test_any_host_either_normalizes_into_a_valid_leaf_or_is_refused(
    minter: LeafMinter, host: str
) -> None:
    try:
        name = normalize_host(host)
    except HostError:
        return
    assert normalize_host(name) == name  # idempotent: cache keys stay stable
    leaf = minter.mint(name)
    dns, ips = _sans(leaf)
    assert dns + ips == [name]


# --- the store: contexts, cache, threads ------------------------------------------------------


def test_context_is_server_side_tls12_plus_with_http11_alpn(store: CertStore) -> None:
    ctx = store.server_context("ctx.test")
    assert ctx.protocol == ssl.PROTOCOL_TLS_SERVER
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_second_lookup_returns_the_cached_context(store: CertStore) -> None:
    first = store.server_context("cached.test")
    assert store.server_context("cached.test") is first
    assert store.server_context("CACHED.test.") is first
    assert store.minted == 1


def test_ip_spellings_share_one_context(store: CertStore) -> None:
    assert store.server_context("::1") is store.server_context("[0:0::1]")
    assert store.minted == 1


def test_cached_wildcard_serves_hosts_it_covers(store: CertStore) -> None:
    wild = store.server_context("*.wild.test")
    assert store.server_context("a.wild.test") is wild
    assert store.server_context("b.wild.test") is wild
    assert store.minted == 1
    # A wildcard stands for one label only: these need leaves of their own.
    assert store.server_context("wild.test") is not wild
    assert store.server_context("x.y.wild.test") is not wild
    assert store.minted == 3


def test_upstream_sans_make_one_leaf_serve_sibling_hosts(store: CertStore) -> None:
    www = store.server_context("www.sib.test", ["sib.test", "*.sib.test", "10.1.2.3"])
    assert store.server_context("api.sib.test") is www
    assert store.server_context("sib.test") is www
    assert store.server_context("10.1.2.3") is www
    assert store.minted == 1


def test_membership_tells_whether_a_lookup_would_sign(store: CertStore) -> None:
    assert "member.test" not in store
    store.server_context("member.test")
    store.server_context("*.wild.member.test")
    assert "member.test" in store and "MEMBER.test." in store
    assert "a.wild.member.test" in store
    assert "other.test" not in store and "bad name" not in store and 42 not in store
    assert store.minted == 2


def test_lru_evicts_the_least_recently_used_host(ca: CertificateAuthority) -> None:
    store = CertStore(ca, cache_size=2)
    a = store.server_context("a.lru.test")
    store.server_context("b.lru.test")
    assert store.server_context("a.lru.test") is a  # a is now the most recent
    store.server_context("c.lru.test")  # evicts b
    assert len(store) == 2
    assert store.server_context("a.lru.test") is a
    assert store.minted == 3
    store.server_context("b.lru.test")
    assert store.minted == 4


def test_cache_size_must_be_positive(ca: CertificateAuthority) -> None:
    with pytest.raises(ValueError, match="cache_size"):
        CertStore(ca, cache_size=0)


def test_concurrent_lookups_of_one_host_mint_once(store: CertStore) -> None:
    barrier = threading.Barrier(8)
    contexts: list[ssl.SSLContext] = []

    def lookup() -> None:
        barrier.wait(timeout=10)
        contexts.append(store.server_context("busy.test"))

    threads = [threading.Thread(target=lookup) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(contexts) == 8 and all(c is contexts[0] for c in contexts)
    assert store.minted == 1


def test_concurrent_mints_of_different_hosts_each_present_their_own_leaf(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory
) -> None:
    hosts = [f"h{i}.parallel.test" for i in range(48)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        contexts = dict(zip(hosts, pool.map(store.server_context, hosts), strict=True))
    assert store.minted == len(hosts) and len(set(map(id, contexts.values()))) == len(hosts)
    for host in hosts[::12]:  # the right leaf and key ended up in each context
        server = tls_server(contexts[host])
        assert _client_get(ca, "127.0.0.1", server.port, host) == "http/1.1"


def test_lookups_never_wait_for_another_hosts_mint(
    store: CertStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asyncio caller looks up on its event loop while a worker thread mints."""
    store.server_context("ready.test")
    signing, release = threading.Event(), threading.Event()
    real_mint = store._minter.mint_for

    def slow_mint(names: Sequence[str]) -> x509.Certificate:
        signing.set()
        release.wait(timeout=30)
        return real_mint(names)

    monkeypatch.setattr(store._minter, "mint_for", slow_mint)
    minting = threading.Thread(target=store.server_context, args=("slow.test",))
    minting.start()
    try:
        assert signing.wait(timeout=10)
        answers: list[object] = []
        lookup = threading.Thread(
            target=lambda: answers.extend(
                ["ready.test" in store, "slow.test" in store, store.server_context("ready.test")]
            )
        )
        lookup.start()
        lookup.join(timeout=10)
        assert answers[:2] == [True, False] and isinstance(answers[2], ssl.SSLContext)
    finally:
        release.set()
        minting.join(timeout=30)
    assert "slow.test" in store and store.minted == 2


def test_certs_reach_openssl_through_public_apis_only() -> None:
    """No ctypes into the ssl module's private object layout (a new Python could crash on it)."""
    for module in Path(certs.__file__).parent.glob("*.py"):
        source = module.read_text()
        assert "ctypes" not in source and "_ssl" not in source, module.name


class Loaded(NamedTuple):
    path: str
    file_mode: int
    dir_mode: int
    content: bytes


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Loaded]:
    """Records each PEM file the store hands to OpenSSL, as OpenSSL sees it."""
    seen: list[Loaded] = []
    real_load = ssl.SSLContext.load_cert_chain

    def recording_load(ctx: ssl.SSLContext, certfile: str, *args: Any) -> None:
        path = Path(certfile)
        modes = (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777)
        seen.append(Loaded(certfile, *modes, path.read_bytes()))
        real_load(ctx, certfile, *args)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", recording_load)
    return seen


def _assert_leaf_chain_and_key(store: CertStore, host: str, pem: bytes) -> None:
    """The leaf alone (clients hold the CA already), then the leaf key."""
    assert pem.startswith(store.leaf_pem(host))
    assert pem.count(b"-----BEGIN CERTIFICATE-----") == 1
    assert store.ca.cert_pem not in pem
    key = serialization.load_pem_private_key(pem[len(store.leaf_pem(host)) :], password=None)
    assert key.private_numbers() == store.leaf_key.private_numbers()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memfd on this platform")
def test_leaf_pem_passes_through_memory_only_on_linux(
    ca: CertificateAuthority, loads: list[Loaded]
) -> None:
    store = CertStore(ca)
    store.server_context("memfd.test")
    (loaded,) = loads
    assert loaded.path.startswith("/proc/self/fd/")
    _assert_leaf_chain_and_key(store, "memfd.test", loaded.content)
    # The descriptor is closed again (its number may since belong to another file).
    assert not os.path.exists(loaded.path) or "inspector-leaf" not in os.readlink(loaded.path)


def test_without_memfd_the_pem_lives_briefly_in_a_private_dir(
    ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loads: list[Loaded],
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = CertStore(ca)
    store.server_context("files.test")
    (loaded,) = loads
    assert Path(loaded.path).parent.parent == tmp_path
    assert (loaded.file_mode, loaded.dir_mode) == (0o600, 0o700)
    _assert_leaf_chain_and_key(store, "files.test", loaded.content)
    assert list(tmp_path.iterdir()) == []  # file and directory are gone


# --- real TLS clients --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_handshake_verifies_for_the_host(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory, host: str
) -> None:
    server = tls_server(store.server_context(host))
    assert _client_get(ca, "127.0.0.1", server.port, host) == "http/1.1"


@needs_ipv6
def test_tls_handshake_verifies_for_ipv6_loopback(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory
) -> None:
    server = tls_server(store.server_context("::1"), host="::1")
    assert _client_get(ca, "::1", server.port, "::1") == "http/1.1"


def test_tls_handshake_through_a_cached_wildcard(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory
) -> None:
    store.server_context("*.handshake.test")
    server = tls_server(store.server_context("www.handshake.test"))
    assert _client_get(ca, "127.0.0.1", server.port, "www.handshake.test") == "http/1.1"


@pytest.mark.parametrize(
    ("served", "asked"), [("localhost", "example.org"), ("127.0.0.1", "127.0.0.2")]
)
def test_tls_handshake_fails_for_the_wrong_name(
    ca: CertificateAuthority,
    store: CertStore,
    tls_server: ServerFactory,
    served: str,
    asked: str,
) -> None:
    server = tls_server(store.server_context(served))
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        _client_get(ca, "127.0.0.1", server.port, asked)


def test_tls_handshake_fails_without_trusting_the_ca(
    store: CertStore, tls_server: ServerFactory, upstream_ca_file: Path
) -> None:
    server = tls_server(store.server_context("localhost"))
    ctx = ssl.create_default_context(cafile=str(upstream_ca_file))  # some other CA
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            ctx.wrap_socket(raw, server_hostname="localhost")


@needs_curl
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_curl_trusts_the_leaf_with_cacert(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory, host: str
) -> None:
    server = tls_server(store.server_context(host))
    url = f"https://{host}:{server.port}/"
    ok = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", str(ca.cert_path), url],
        capture_output=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"ok"
    untrusted = subprocess.run(
        ["curl", "-sS", "--max-time", "10", url], capture_output=True, timeout=30
    )
    assert untrusted.returncode == 60  # curl: peer certificate cannot be authenticated


def test_requests_trusts_the_leaf_with_its_ca_bundle(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory
) -> None:
    requests = pytest.importorskip("requests")
    server = tls_server(store.server_context("localhost"))
    response = requests.get(
        f"https://localhost:{server.port}/", verify=str(ca.cert_path), timeout=10
    )
    assert response.status_code == 200 and response.text == "ok"


def test_httpx_trusts_the_leaf_with_the_ca(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory
) -> None:
    httpx = pytest.importorskip("httpx")
    server = tls_server(store.server_context("localhost"))
    verify = ssl.create_default_context(cafile=str(ca.cert_path))
    response = httpx.get(f"https://localhost:{server.port}/", verify=verify, timeout=10)
    assert response.status_code == 200 and response.text == "ok"


@needs_openssl
def test_the_server_presents_the_leaf_alone_and_openssl_verifies_it(
    ca: CertificateAuthority, store: CertStore, tls_server: ServerFactory
) -> None:
    """The root stays out of the chain: the client's trust anchor completes it."""
    server = tls_server(store.server_context("localhost"))
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-showcerts"]
    command += ["-servername", "localhost", "-verify_hostname", "localhost"]
    command += ["-CAfile", str(ca.cert_path), "-verify_return_error"]
    result = subprocess.run(
        command,
        input=b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        capture_output=True,
        timeout=30,
    )
    out = result.stdout.decode(errors="replace")
    # Not the exit status: it may report the server's close without close_notify.
    assert "Verify return code: 0 (ok)" in out, out + result.stderr.decode(errors="replace")
    presented = out.count("-----BEGIN CERTIFICATE-----")
    assert presented == 1, out
    assert store.leaf_pem("localhost").decode().split("-----BEGIN CERTIFICATE-----")[1] in out


def test_benchmark_script_runs_and_reports_every_figure() -> None:
    root = Path(__file__).resolve().parent.parent
    counts = ["--hosts", "5", "--handshakes", "5", "--lookups", "10"]
    result = subprocess.run(
        [sys.executable, "bench/bench_certs.py", *counts],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stderr
    for figure in ("hosts/s", "ms/host", "lookup hit:", "handshakes/s", "1 leaf signed"):
        assert figure in result.stdout


def test_asyncio_server_upgrades_to_the_context_as_the_proxy_does(
    ca: CertificateAuthority, store: CertStore
) -> None:
    """Plain TCP first, then start_tls with the host's context (CONNECT-style)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = (await reader.readline()).decode().strip()
        writer.write(b"go\n")
        await writer.drain()
        await writer.start_tls(store.server_context(host))
        writer.write(
            f"hello {writer.get_extra_info('ssl_object').selected_alpn_protocol()}".encode()
        )
        await writer.drain()
        writer.close()

    async def scenario() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client_ctx = ssl.create_default_context(cafile=str(ca.cert_path))
        client_ctx.set_alpn_protocols(["http/1.1"])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"tunnel.test\n")
        assert await reader.readline() == b"go\n"
        await writer.start_tls(client_ctx, server_hostname="tunnel.test")
        data = await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    assert asyncio.run(asyncio.wait_for(scenario(), timeout=20)) == b"hello http/1.1"
