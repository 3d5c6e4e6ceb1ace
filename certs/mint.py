"""Build leaf certificates for host names and IP addresses, signed by the local CA."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.ca import BACKDATE, ORGANIZATION, CertificateAuthority, signing_hash

# Browsers refuse server certificates valid for longer than 398 days.
LEAF_VALIDITY = timedelta(days=397)
_CN_MAX = 64
_MAX_NAME = 253
# One DNS label; underscores appear in real host names, so they are accepted too.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class HostError(ValueError):
    """A name that cannot go into a certificate; the message quotes it."""


def new_leaf_key() -> ec.EllipticCurvePrivateKey:
    """The key every leaf of one process shares (never the CA's own key)."""
    return ec.generate_private_key(ec.SECP256R1())


def normalize_host(host: str) -> str:
    """Canonical form of a DNS name, wildcard or IP address, or raise HostError.

    IPv6 may come in brackets; DNS names are lowercased, lose a trailing dot and
    international names become their ASCII (punycode) form.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    ip = _as_ip(text)
    if ip is not None:
        return ip.compressed
    name = text.lower()
    if name.endswith("."):  # the absolute form of the same name
        name = name[:-1]
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise HostError(f"{host!r} is not a valid international domain name") from None
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if not name or len(name) > _MAX_NAME or not all(_LABEL.fullmatch(x) for x in labels):
        raise HostError(f"{host!r} is not a host name or IP address a certificate can name")
    return name


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if ":" in text:
        text = text.split("%", 1)[0]  # a zone id (fe80::1%eth0) is local to this machine
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def general_name(name: str) -> x509.GeneralName:
    """The SAN entry for an already normalized name: IPAddress for IPs, else DNSName."""
    ip = _as_ip(name)
    return x509.IPAddress(ip) if ip is not None else x509.DNSName(name)


def san_names(host: str, extra_sans: Iterable[str]) -> list[str]:
    """``host`` then each valid extra name once; unusable extra names are left out.

    Extra names usually come from the real server's certificate, which we do not
    control, so one odd entry must not stop interception of the host itself.
    """
    names = [normalize_host(host)]
    for extra in extra_sans:
        try:
            name = normalize_host(extra)
        except HostError:
            continue
        if name not in names:
            names.append(name)
    return names


def names_in_certificate(der: bytes) -> list[str]:
    """The DNS names and IPs a (real server's) DER certificate is for, as ``extra_sans``.

    Reads subjectAltName, or the common name when there is none; an unparsable
    certificate gives no names, since copying names is only cosmetic.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(cn.value) for cn in cns[:1]]
    except ValueError:
        return []
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return san.get_values_for_type(x509.DNSName) + ips


class LeafMinter:
    """Signs leaf certificates with the CA; everything per-CA is computed once."""

    def __init__(
        self, ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey | None = None
    ) -> None:
        self.ca = ca
        self.leaf_key = leaf_key or new_leaf_key()
        public_key = self.leaf_key.public_key()
        self._hash = signing_hash(ca.private_key)
        self._ca_not_before = ca.certificate.not_valid_before_utc
        self._ca_not_after = ca.certificate.not_valid_after_utc
        # Builders are immutable: what every leaf shares is set once, here.
        self._template = (
            x509.CertificateBuilder()
            .issuer_name(ca.certificate.subject)
            .public_key(public_key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_LEAF_USAGE, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(_authority_key_id(ca.certificate), critical=False)
        )

    def mint(self, host: str, extra_sans: Iterable[str] = ()) -> x509.Certificate:
        """A leaf for ``host`` (and ``extra_sans``), valid now and never past the CA."""
        return self.mint_for(san_names(host, extra_sans))

    def mint_for(self, names: Sequence[str]) -> x509.Certificate:
        """A leaf for already normalized ``names`` (as ``san_names`` gives), the first
        its common name."""
        now = datetime.now(UTC)
        not_before = max(now - BACKDATE, self._ca_not_before)
        not_after = min(not_before + LEAF_VALIDITY, self._ca_not_after)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, names[0][:_CN_MAX]),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            ]
        )
        builder = (
            self._template.subject_name(subject)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName([general_name(n) for n in names]), critical=False
            )
        )
        return builder.sign(self.ca.private_key, self._hash)


_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:  # a CA brought by the user may lack one
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
