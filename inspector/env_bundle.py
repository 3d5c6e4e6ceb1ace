"""The CA bundle ``inspector run`` and ``inspector env`` point programs at.

Programs given ``SSL_CERT_FILE`` (or ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ...) trust
that file *instead of* the system's CAs, so the bundle holds the system's trusted CAs plus
the inspector CA: intercepted hosts verify against the inspector CA, and hosts that are
tunnelled untouched (``--ignore-hosts``) still verify against their real CAs.

The system's CAs are found where OpenSSL and the distributions keep them (the places
``ssl.get_default_verify_paths()`` names, then the usual distribution files, then a
directory of hashed certificates); on Windows and macOS Python loads the system store;
``certifi``'s bundle is the last resort, used only if it is installed. The bundle is
written once per CA, as ``trust-<fingerprint>.pem`` in the confdir, and again only when
the system's bundle changed since.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from certs import CertificateAuthority

BUNDLE_PREFIX = "trust-"
# Where distributions keep the system CA bundle, in the order Go's crypto/x509 looks.
DISTRO_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7+
    "/etc/ssl/cert.pem",  # Alpine, macOS, the BSDs
)
DISTRO_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class SystemCAs:
    """The system's trusted CAs as PEM, and where they were found (a file when one was)."""

    pem: bytes
    source: str
    path: Path | None = None


def system_cas(exclude: Path | None = None) -> SystemCAs:
    """The system's trusted CA certificates; ``exclude``: a directory of our own bundles."""
    paths = ssl.get_default_verify_paths()
    for name in (paths.cafile, paths.openssl_cafile, *DISTRO_BUNDLES):
        if not name:
            continue
        path = Path(name)
        if exclude is not None and path.resolve().parent == exclude.resolve():
            continue  # SSL_CERT_FILE already points at one of our bundles: not the system's
        pem = _pem_blocks(_read(path))
        if pem:
            return SystemCAs(pem, str(path), path)
    for name in (paths.capath, paths.openssl_capath, *DISTRO_DIRS):
        pem = _pem_dir(Path(name)) if name else b""
        if pem:
            return SystemCAs(pem, f"the certificates in {name}")
    pem = _store_certificates()
    if pem:
        return SystemCAs(pem, "the system certificate store")
    return _certifi_cas()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes() if path.is_file() else b""
    except OSError:
        return b""


def _pem_blocks(data: bytes) -> bytes:
    """Only the PEM certificate blocks of ``data``, one after another."""
    out = []
    start = data.find(_PEM_BEGIN)
    while start != -1:
        end = data.find(_PEM_END, start)
        if end == -1:
            break
        out.append(data[start : end + len(_PEM_END)] + b"\n")
        start = data.find(_PEM_BEGIN, end)
    return b"".join(out)


def _pem_dir(directory: Path) -> bytes:
    """The certificates of a hashed-certificates directory (OpenSSL's capath), each once."""
    if not directory.is_dir():
        return b""
    seen: set[bytes] = set()
    out = []
    for path in sorted(directory.iterdir()):
        block = _pem_blocks(_read(path))
        if block and block not in seen:  # the same certificate under its hash and its name
            seen.add(block)
            out.append(block)
    return b"".join(out)


def _store_certificates() -> bytes:
    """The CAs Python loads from the OS store (Windows' and macOS' keychains)."""
    context = ssl.create_default_context()
    try:
        der_certs = context.get_ca_certs(binary_form=True)
    except ssl.SSLError:
        return b""
    return b"".join(ssl.DER_cert_to_PEM_cert(der).encode("ascii") for der in der_certs)


def _certifi_cas() -> SystemCAs:
    try:
        import certifi
    except ImportError:
        return SystemCAs(b"", "nothing (no system CA bundle was found, and certifi is missing)")
    path = Path(certifi.where())
    return SystemCAs(_pem_blocks(_read(path)), f"certifi ({path})", path)


def bundle_path(ca: CertificateAuthority) -> Path:
    """Where the bundle for ``ca`` lives: named by its fingerprint, so a new CA gets a new one."""
    fingerprint = ca.fingerprint_sha256.replace(":", "").lower()[:16]
    return ca.cert_path.parent / f"{BUNDLE_PREFIX}{fingerprint}.pem"


def ensure_bundle(ca: CertificateAuthority) -> Path:
    """The bundle of the system's CAs and ``ca``: written when missing or the system's changed."""
    path = bundle_path(ca)
    system = system_cas(exclude=path.parent)
    if path.is_file() and not _newer(system.path, path):
        return path
    header = (
        f"# The system's trusted CAs (from {system.source}) and the http-inspector CA,\n"
        "# for programs run through the proxy. Written by inspector; safe to delete.\n"
    ).encode()
    ours = b"# http-inspector CA\n" + _pem_blocks(ca.cert_pem)
    _write_atomically(path, header + system.pem + ours)
    for old in path.parent.glob(f"{BUNDLE_PREFIX}*.pem"):
        if old != path:  # the bundle of a CA that was replaced
            old.unlink(missing_ok=True)
    return path


def _newer(source: Path | None, bundle: Path) -> bool:
    try:
        return source is not None and source.stat().st_mtime > bundle.stat().st_mtime
    except OSError:
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # certificates only: readable by the programs that need them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
