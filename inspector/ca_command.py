"""``inspector ca``: show the local CA certificate and how to trust it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from certs import CAError, CertificateAuthority


def trust_steps(ca: CertificateAuthority) -> str:
    """Short how-to-trust instructions for common clients, naming the CA's files."""
    pem, der, key = (shlex.quote(str(p)) for p in (ca.cert_path, ca.der_path, ca.key_path))
    nssdb = "sql:$HOME/.pki/nssdb"
    return f"""\
No trust needed for one program, or for a shell pointed at a running proxy:
    inspector run -- CMD ARGS...
    eval "$(inspector env)"
How to trust it, so that intercepted HTTPS verifies without warnings:
  curl:
    curl --cacert {pem} ...
  Python (ssl, urllib, httpx) and requests:
    SSL_CERT_FILE={pem} python ...
    REQUESTS_CA_BUNDLE={pem} python ...
  Firefox/Chromium on Linux (NSS; Firefox profiles: Settings > Certificates > Import):
    certutil -d {nssdb} -A -t C,, -n http-inspector -i {pem}
  Debian/Ubuntu system store:
    sudo cp {pem} /usr/local/share/ca-certificates/http-inspector.crt && sudo update-ca-certificates
  macOS system keychain:
    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {pem}
  Windows, Android and others that want DER:
    import {der}

Anyone who holds {key} can impersonate any site to clients that trust this CA:
keep it private, and remove the trust when you no longer need it."""


def main(confdir: Path) -> int:
    """Print the CA's path, fingerprint, PEM and trust steps; create the CA if needed."""
    try:
        ca = CertificateAuthority.load_or_create(confdir)
    except CAError as e:
        print(f"inspector: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(
        f"CA certificate: {ca.cert_path}\n"
        f"SHA-256 fingerprint: {ca.fingerprint_sha256}\n\n"
        f"{ca.cert_pem.decode('ascii')}\n"
        f"{trust_steps(ca)}\n"
    )
    return 0
