"""Per-host server-side SSL contexts with minted leaves, kept in an LRU cache."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs.ca import CertificateAuthority
from certs.mint import HostError, LeafMinter, normalize_host, san_names

ALPN_HTTP1, ALPN_H2 = "http/1.1", "h2"
# How often one lookup waits for another thread's mint of the same name before minting
# its own: only a cache evicting leaves before they can be read needs more than one wait.
_MAX_WAITS = 100


@dataclass(slots=True)
class _Entry:
    certificate: x509.Certificate
    context: ssl.SSLContext  # offers ALPN http/1.1
    h2_context: ssl.SSLContext | None = None  # offers h2; made when first asked for


class CertStore:
    """Hands out an ``ssl.SSLContext`` per host for the proxy's client-facing TLS.

    Lookups go exact name, then a cached wildcard covering it, then a new leaf.
    Every name a leaf covers points at its entry, so a leaf minted with the
    upstream's SANs (say ``*.example.com``) serves its sibling hosts too.
    Thread-safe: one lock guards the cache (never held while signing, so cache hits
    never wait for a mint), and a host is minted once even when several connections
    ask for it at the same moment: the later ones wait for the first one's leaf.
    Make one per process: all its leaves share one key of their own (never the
    CA's), generated here.
    """

    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        cache_size: int = 1024,
        leaf_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self.ca = ca
        self.cache_size = cache_size
        self.minted = 0  # how many leaves were signed, for tests and benchmarks
        self._minter = LeafMinter(ca, leaf_key)
        self._key_pem = self._minter.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # "EC PRIVATE KEY": read faster
            serialization.NoEncryption(),
        )
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()  # held for lookups only, never while signing
        self._minting: dict[str, threading.Event] = {}  # names being minted right now

    @property
    def leaf_key(self) -> ec.EllipticCurvePrivateKey:
        """The one private key all leaves of this store share."""
        return self._minter.leaf_key

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, host: object) -> bool:
        """Whether ``server_context(host)`` would come from the cache, without signing.

        Lets an asyncio caller run only real mints in an executor.
        """
        if not isinstance(host, str):
            return False
        with self._lock:
            if host in self._cache:
                return True
        try:
            name = normalize_host(host)
        except HostError:
            return False
        with self._lock:
            return any(key in self._cache for key in (name, _wildcard_for(name)) if key)

    def server_context(
        self, sni_or_host: str, extra_sans: Sequence[str] = (), *, alpn: str = ALPN_HTTP1
    ) -> ssl.SSLContext:
        """A server-side context presenting a leaf for ``sni_or_host`` (cached), offering
        the one application protocol ``alpn`` ("http/1.1" or "h2").

        ``extra_sans`` (e.g. the real server's names) only matter when a leaf is
        minted. Raises ``HostError`` (a ValueError) for a name no certificate can hold.
        """
        entry = self._entry(sni_or_host, extra_sans)
        if alpn == ALPN_HTTP1:
            return entry.context
        if alpn != ALPN_H2:
            raise ValueError(f"unknown ALPN protocol {alpn!r}: expected 'http/1.1' or 'h2'")
        if entry.h2_context is None:  # two threads may both build it: either one serves
            entry.h2_context = self._context_for(entry.certificate, ALPN_H2)
        return entry.h2_context

    def leaf_pem(self, host: str) -> bytes:
        """The PEM of the leaf ``server_context(host)`` presents."""
        return self._entry(host, ()).certificate.public_bytes(serialization.Encoding.PEM)

    def _entry(self, host: str, extra_sans: Sequence[str]) -> _Entry:
        with self._lock:
            # Keys are normalized names, so a key equal to ``host`` needs no parsing.
            entry = self._cache.get(host)
            if entry is not None:
                self._cache.move_to_end(host)
                return entry
        name = normalize_host(host)
        owner = False
        for _ in range(_MAX_WAITS):
            with self._lock:
                entry = self._lookup(name)
                if entry is not None:
                    return entry
                pending = self._minting.get(name)
                if pending is None:
                    self._minting[name] = threading.Event()
                    owner = True
                    break
            pending.wait()  # another thread is minting this name: then look again
        if not owner:  # its leaves keep being evicted before we see them: mint our own
            return self._mint(name, extra_sans)
        try:
            return self._mint(name, extra_sans)
        finally:
            with self._lock:
                self._minting.pop(name).set()

    def _lookup(self, name: str) -> _Entry | None:
        for key in (name, _wildcard_for(name)):
            if key is not None and key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _mint(self, name: str, extra_sans: Sequence[str]) -> _Entry:
        """Sign and load a leaf outside the lock (lookups of other hosts never wait for
        it), then cache it under every name it covers."""
        names = san_names(name, extra_sans)
        cert = self._minter.mint_for(names)
        entry = _Entry(cert, self._context_for(cert, ALPN_HTTP1))
        with self._lock:
            self.minted += 1
            for covered in names:
                self._cache[covered] = entry
                self._cache.move_to_end(covered)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return entry

    def _context_for(self, cert: x509.Certificate, alpn: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols([alpn])
        # The leaf alone: the CA stays out of the chain, since clients that trust it hold
        # it already (RFC 8446 4.4.2 lets a server omit the root) and OpenSSL would parse
        # it again for every leaf. Leaf and key go in one memory file: the ssl module loads
        # certificates only from files, and a key file of its own read no faster.
        with pem_path(cert.public_bytes(serialization.Encoding.PEM) + self._key_pem) as path:
            ctx.load_cert_chain(path)
        return ctx


@contextlib.contextmanager
def pem_path(data: bytes) -> Iterator[str]:
    """A path ``load_cert_chain`` (which only reads files) can read ``data`` from.

    On Linux an anonymous memory file: no disk, nothing another user can see,
    nothing left behind by a killed process, and ~50x faster than a temporary file
    on a busy machine. Elsewhere a private directory (mode 0700) made and removed
    around the one read.
    """
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("inspector-leaf", os.MFD_CLOEXEC)
        try:
            with open(fd, "wb", closefd=False) as f:
                f.write(data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="inspector-certs-") as tmp:
        path = os.path.join(tmp, "leaf.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb") as f:
            f.write(data)
        yield path


def _wildcard_for(name: str) -> str | None:
    """The wildcard that would cover ``name``, if certificate checks allow one there.

    A wildcard stands for exactly one label and needs two labels after it
    (``*.example.com``, never ``*.com``); IP addresses never match one.
    """
    if ":" in name or name.replace(".", "").isdigit():
        return None
    parts = name.split(".", 1)
    if len(parts) < 2 or parts[1].count(".") < 1 or parts[0] == "*":
        return None
    return f"*.{parts[1]}"
