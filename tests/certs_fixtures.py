"""Helpers the certs tests run in separate processes (importable without pytest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from certs import CertificateAuthority


def race_for_ca(confdirs: list[Path], barrier: Any, results: Any) -> None:
    """For each confdir: wait until every racer is ready, then load or create the CA."""
    for confdir in confdirs:
        barrier.wait(timeout=60)
        try:
            outcome = CertificateAuthority.load_or_create(confdir).fingerprint_sha256
        except Exception as e:  # reported to the parent, which fails the test with it
            outcome = f"error: {e!r}"
        results.put((str(confdir), outcome))
