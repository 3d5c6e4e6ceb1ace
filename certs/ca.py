"""Create or load the local certificate authority kept in the config directory.

Files in ``confdir``: ``ca.pem`` (certificate), ``ca-key.pem`` (private key, mode 0600)
and ``ca.crt`` (the same certificate in DER, for systems that want that).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

CERT_FILE = "ca.pem"
KEY_FILE = "ca-key.pem"
DER_FILE = "ca.crt"
LOCK_FILE = ".ca.lock"

CA_VALIDITY = timedelta(days=3 * 365)
# Certificates start a day in the past so that clients with a slow clock accept them.
BACKDATE = timedelta(days=1)
ORGANIZATION = "http-inspector"
_CN_PREFIX = "http-inspector local CA ("
_CN_MAX = 64  # the X.520 upper bound for commonName

CAKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


class CAError(Exception):
    """The CA files cannot be used; the message names the file and says how to fix it."""


def signing_hash(key: CAKey) -> hashes.SHA256 | None:
    """The digest to sign with ``key`` (EdDSA keys take none)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


class CertificateAuthority:
    """The loaded CA: its certificate and key, and where they live on disk."""

    def __init__(
        self, cert_path: Path, key_path: Path, certificate: x509.Certificate, private_key: CAKey
    ) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.der_path = cert_path.with_name(DER_FILE)
        self.certificate = certificate
        self.private_key = private_key
        self.cert_pem: bytes = certificate.public_bytes(serialization.Encoding.PEM)
        digest = certificate.fingerprint(hashes.SHA256())
        self.fingerprint_sha256: str = digest.hex(":").upper()
        self.created = False  # made by this process's load_or_create (a first run)

    def __repr__(self) -> str:
        return f"<CertificateAuthority {self.cert_path} {self.fingerprint_sha256[:23]}...>"

    @classmethod
    def load_or_create(cls, confdir: Path) -> CertificateAuthority:
        """Load the CA from ``confdir``, creating the directory and a new CA on first use."""
        confdir = Path(confdir).expanduser()
        cert_path, key_path = confdir / CERT_FILE, confdir / KEY_FILE
        try:
            _make_private_dir(confdir)
            # Fast path without the lock: both files only exist once creation finished.
            created = False
            if not (cert_path.exists() and key_path.exists()):
                with _locked(confdir / LOCK_FILE):
                    if not cert_path.exists() and not key_path.exists():
                        _write_new_ca(cert_path, key_path)
                        created = True
            ca = _load(cert_path, key_path)
            ca.created = created
            _ensure_der_copy(ca)
        except CAError:
            raise
        except OSError as e:
            where = f"{e.filename}: " if e.filename and Path(e.filename) != confdir else ""
            raise CAError(
                f"cannot use the CA directory {confdir}: {where}{e.strerror or e}; "
                "check its permissions or choose another with --confdir DIR"
            ) from None
        return ca


def _make_private_dir(confdir: Path) -> None:
    if confdir.is_dir():
        return
    for path in (confdir, *confdir.parents):
        if path.exists() and not path.is_dir():
            raise CAError(f"{path} is not a directory: move it away or choose --confdir DIR")
    confdir.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process made it first
        confdir.mkdir(mode=0o700)
        os.chmod(confdir, 0o700)  # mkdir's mode is filtered by the umask


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so that concurrent first runs make one CA."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_new_ca(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_ca_certificate(key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key goes in first: readers that skip the lock wait for both files to exist.
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def build_ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A self-signed CA certificate for ``key``: path length 0, about three years."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _common_name(socket.gethostname())),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )
    now = datetime.now(UTC)
    public = key.public_key()
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _common_name(hostname: str) -> str:
    room = _CN_MAX - len(_CN_PREFIX) - 1
    return f"{_CN_PREFIX}{hostname[:room] or 'localhost'})"


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write to a new private temporary file, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left over by a crashed run of a process with the same pid
    # O_EXCL with the final mode: the key is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _ensure_der_copy(ca: CertificateAuthority) -> None:
    der = ca.certificate.public_bytes(serialization.Encoding.DER)
    try:
        if ca.der_path.read_bytes() == der:
            return
    except FileNotFoundError:
        pass
    try:
        _write_atomically(ca.der_path, der, 0o644)
    except OSError:
        pass  # a read-only confdir still serves ca.pem; ca.crt is only a convenience


def _fix_hint(cert_path: Path, key_path: Path) -> str:
    return (
        f"restore the matching {cert_path.name} and {key_path.name}, or move both away "
        f"(e.g. `mv {cert_path.parent} {cert_path.parent}.old`) to create a new CA"
    )


def _load(cert_path: Path, key_path: Path) -> CertificateAuthority:
    hint = _fix_hint(cert_path, key_path)
    for path in (key_path, cert_path):
        if path.exists() and not path.is_file():
            raise CAError(f"{path} is not a regular file: {hint}")
    if not key_path.exists():
        raise CAError(f"CA key {key_path} is missing but {cert_path} exists: {hint}")
    if not cert_path.exists():
        raise CAError(f"CA certificate {cert_path} is missing but {key_path} exists: {hint}")
    key = _load_key(key_path, hint)
    cert = _load_cert(cert_path, hint)
    if not _same_public_key(cert, key):
        raise CAError(f"CA key {key_path} does not match the certificate {cert_path}: {hint}")
    return CertificateAuthority(cert_path, key_path, cert, key)


def _load_key(key_path: Path, hint: str) -> CAKey:
    mode = key_path.stat().st_mode
    if mode & 0o077:
        raise CAError(
            f"CA key {key_path} is accessible by other users (mode {stat.filemode(mode)}): "
            f"run `chmod 600 {key_path}`"
        )
    data = key_path.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CAError(
            f"CA key {key_path} is encrypted; decrypt it with "
            f"`openssl pkey -in {key_path} -out {key_path}`"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CAError(f"CA key {key_path} is not a valid PEM private key: {hint}") from None
    if not isinstance(key, CAKey):
        raise CAError(f"CA key {key_path} is a {type(key).__name__}, which cannot sign: {hint}")
    return key


def _load_cert(cert_path: Path, hint: str) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        raise CAError(
            f"CA certificate {cert_path} is not a valid PEM certificate: {hint}"
        ) from None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CAError(f"{cert_path} is not a CA certificate (no basicConstraints CA:TRUE): {hint}")
    expiry = cert.not_valid_after_utc
    if expiry <= datetime.now(UTC):
        raise CAError(
            f"CA certificate {cert_path} expired on {expiry:%Y-%m-%d}: move {cert_path.name} "
            f"and its key away (e.g. `mv {cert_path.parent} {cert_path.parent}.old`) "
            "to create a new CA, then trust the new one"
        )
    return cert


def _same_public_key(cert: x509.Certificate, key: CAKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)
