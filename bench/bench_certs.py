"""How fast the local CA serves TLS: cold mints, warm handshakes, and a cache hit alone.

    PYTHONPATH=. python bench/bench_certs.py [--hosts 500] [--handshakes 1000]

cold        a new host each time: sign a leaf and build its ready SSLContext
            (split into signing, bare SSLContext creation, handing the PEM over in a
            memory file or a temporary file, and load_cert_chain with the cache)
warm        loopback TLS handshakes where the server looks its context up per
            connection (a cache hit) and a verifying client checks the chain
lookup      server_context() on a cached host, nothing else
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from certs import CertificateAuthority, CertStore, LeafMinter
from certs.store import pem_path


def per_op(count: int, fn: Callable[[int], object]) -> float:
    """Seconds per call of ``fn(i)`` over ``count`` calls."""
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - start) / count


def bench_cold(ca: CertificateAuthority, hosts: int) -> None:
    store = CertStore(ca, cache_size=hosts + 1)
    total = per_op(hosts, lambda i: store.server_context(f"cold{i}.bench.test"))
    minter = LeafMinter(ca)
    signing = per_op(hosts, lambda i: minter.mint(f"sign{i}.bench.test"))
    bare = per_op(hosts, lambda i: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    key_pem = store.leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pem = store.leaf_pem("cold0.bench.test") + key_pem  # what the store hands to OpenSSL
    files = per_op(hosts, lambda i: _hand_over(pem))
    handoff = "memfd" if hasattr(os, "memfd_create") else "temporary file"
    print(
        f"cold mint: {1 / total:8.0f} hosts/s  {total * 1e3:6.2f} ms/host to a ready SSLContext "
        f"(target < 5 ms; leaf and key handed over as PEM in a {handoff})"
    )
    print(
        f"  of which: sign leaf {signing * 1e3:.2f} ms, new SSLContext {bare * 1e3:.2f} ms, "
        f"PEM handoff {files * 1e3:.2f} ms, load_cert_chain and cache "
        f"{max(total - signing - bare - files, 0.0) * 1e3:.2f} ms"
    )


def _hand_over(pem: bytes) -> None:
    """What the store does per leaf so that load_cert_chain has a path to read."""
    with pem_path(pem):
        pass


def bench_lookup(ca: CertificateAuthority, lookups: int) -> None:
    store = CertStore(ca)
    store.server_context("hit.bench.test")
    store.server_context("*.wild.bench.test")
    exact = per_op(lookups, lambda i: store.server_context("hit.bench.test"))
    wild = per_op(lookups, lambda i: store.server_context("www.wild.bench.test"))
    assert store.minted == 2, "a cache hit must not sign"
    print(
        f"lookup hit: exact {exact * 1e6:.1f} us, via cached wildcard {wild * 1e6:.1f} us "
        f"(no signing: {store.minted} leaves for {2 * lookups + 2} lookups)"
    )


def _serve(listener: socket.socket, store: CertStore, host: str, count: int) -> None:
    for _ in range(count):
        conn, _ = listener.accept()
        try:
            ctx = store.server_context(host)  # per connection, as the proxy does
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)  # wait for the client's close so both sides finish
        except (OSError, ssl.SSLError) as e:
            print(f"server handshake failed: {e}", file=sys.stderr)


def bench_warm(ca: CertificateAuthority, handshakes: int) -> None:
    store = CertStore(ca)
    host = "localhost"
    store.server_context(host)
    client_ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        server = threading.Thread(target=_serve, args=(listener, store, host, handshakes))
        server.start()
        times = []
        for _ in range(handshakes):
            start = time.perf_counter()
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with client_ctx.wrap_socket(raw, server_hostname=host) as tls:
                times.append(time.perf_counter() - start)
                version = tls.version()
        server.join(timeout=60)
    minted = store.minted
    mean = statistics.fmean(times)
    p99 = sorted(times)[int(len(times) * 0.99) - 1]
    print(
        f"warm handshake: {1 / mean:8.0f} handshakes/s  mean {mean * 1e3:.2f} ms, "
        f"p99 {p99 * 1e3:.2f} ms ({version}, verifying client and server in one process; "
        f"{minted} leaf signed for {handshakes} connections)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500, help="cold mints to time")
    parser.add_argument("--handshakes", type=int, default=1000, help="warm handshakes to time")
    parser.add_argument("--lookups", type=int, default=100_000, help="cache hits to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ca = CertificateAuthority.load_or_create(Path(tmp) / "confdir")
        print(f"python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
        bench_cold(ca, args.hosts)
        bench_lookup(ca, args.lookups)
        bench_warm(ca, args.handshakes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
