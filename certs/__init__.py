"""A local certificate authority that mints per-host certificates."""

from certs.ca import CAError, CertificateAuthority
from certs.mint import HostError, LeafMinter, names_in_certificate, normalize_host
from certs.store import CertStore

__all__ = [
    "CAError",
    "CertStore",
    "CertificateAuthority",
    "HostError",
    "LeafMinter",
    "names_in_certificate",
    "normalize_host",
]
