"""Load generator for the proxy benchmark: keep-alive, new-connection, latency and idle loads.

Each subcommand prints JSON lines on stdout: {"event": "measure_start"} when the measured
part begins and {"event": "measure_end", ...figures} when it ends, so the harness can read
the proxy's CPU time and memory exactly around the measured part. `--proxy none` talks to
the upstream directly (the no-proxy baseline). HTTPS through a proxy means CONNECT, then
TLS verified against the proxy's CA (the interception is checked, not trusted blindly).

    python bench/proxy_load.py keepalive --proxy 127.0.0.1:8080 --url https://127.0.0.1:8443/small \
        --ca ~/.inspector/ca.pem --connections 50 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import socket
import ssl
import statistics
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # plain asyncio still works, just with a slower client
    uvloop = None


class LoadError(Exception):
    """The peer answered something the benchmark cannot count as a good response."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit(f"proxy_load: bad --url {url!r}: use http(s)://HOST:PORT/PATH")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path or "/")

    def with_host(self, host: str) -> Target:
        return Target(self.scheme, host, self.port, self.path)

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def request(self, *, absolute: bool) -> bytes:
        """A keep-alive GET; absolute-form for a plain-HTTP proxy."""
        target = f"{self.scheme}://{self.authority}{self.path}" if absolute else self.path
        return f"GET {target} HTTP/1.1\r\nHost: {self.authority}\r\n\r\n".encode()


def emit(event: str, **figures: object) -> None:
    print(json.dumps({"event": event, **figures}), flush=True)


def parse_proxy(text: str) -> tuple[str, int] | None:
    if text == "none":
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"proxy_load: bad --proxy {text!r}: use HOST:PORT or none")
    return host, int(port)


def client_context(ca_file: str | None, *, check_hostname: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = check_hostname
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# -- asyncio side: one HTTP/1.1 exchange at a time per connection --------------------------


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length or chunked body); return the body size."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, rest = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or parts[1] != b"200":
        raise LoadError(f"unexpected response: {status_line[:200]!r}")
    length = None
    chunked = False
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        return await read_chunked(reader)
    if length is None:
        raise LoadError("response has neither Content-Length nor chunked framing")
    await reader.readexactly(length)
    return length


async def read_chunked(reader: asyncio.StreamReader) -> int:
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return total
        await reader.readexactly(size + 2)
        total += size


async def open_exchange_stream(
    proxy: tuple[str, int] | None, target: Target, ctx: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
    """Connect (through CONNECT for HTTPS via a proxy); return reader, writer, absolute-form."""
    if proxy is None:
        tls = ctx if target.scheme == "https" else None
        server_hostname = target.host if tls else None
        reader, writer = await asyncio.open_connection(
            target.host, target.port, ssl=tls, server_hostname=server_hostname
        )
        return reader, writer, False
    reader, writer = await asyncio.open_connection(*proxy)
    if target.scheme == "http":
        return reader, writer, True
    authority = target.authority
    writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if head.split(b" ", 2)[1:2] != [b"200"]:
        status_line = head.partition(b"\r\n")[0]
        raise LoadError(f"CONNECT refused: {status_line!r}")
    await writer.start_tls(ctx, server_hostname=target.host)
    return reader, writer, False


class Warmup:
    """Set once every connection has had its first response (or failed)."""

    def __init__(self, connections: int) -> None:
        self.left = connections
        self.done = asyncio.Event()

    def one_ready(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.done.set()


async def keepalive_worker(
    proxy, target: Target, ctx, stop_at: list[float], counts: dict[str, int], warm: Warmup
) -> None:
    first = True
    try:
        reader, writer, absolute = await open_exchange_stream(proxy, target, ctx)
        request = target.request(absolute=absolute)
        try:
            while time.monotonic() < stop_at[0]:
                writer.write(request)
                counts["bytes"] += await read_response(reader)
                counts["requests"] += 1
                if first:
                    first = False
                    warm.one_ready()
        finally:
            writer.close()
    finally:
        if first:
            warm.one_ready()


async def run_keepalive(args: argparse.Namespace) -> None:
    proxy, target = parse_proxy(args.proxy), Target.parse(args.url)
    ctx = client_context(args.ca) if target.scheme == "https" else None
    stop_at = [float("inf")]  # set when the measured part starts
    counts = {"requests": 0, "bytes": 0}
    warm = Warmup(args.connections)
    workers = [
        asyncio.create_task(keepalive_worker(proxy, target, ctx, stop_at, counts, warm))
        for _ in range(args.connections)
    ]
    # Measure only once every connection is set up (CONNECT, TLS, upstream connection
    # opened): on a busy machine the warm-up time alone may not be enough.
    await asyncio.sleep(args.warmup)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(warm.done.wait(), timeout=60)
    emit("measure_start")
    start, before = time.monotonic(), counts["requests"]
    stop_at[0] = start + args.duration
    results = await asyncio.gather(*workers, return_exceptions=True)
    elapsed = time.monotonic() - start
    errors = [r for r in results if isinstance(r, BaseException)]
    requests = counts["requests"] - before
    emit(
        "measure_end",
        requests=requests,
        elapsed=elapsed,
        rps=requests / elapsed,
        errors=len(errors),
        first_error=repr(errors[0]) if errors else None,
    )


async def one_connection(proxy, target: Target, ctx) -> None:
    reader, writer, absolute = await open_exchange_stream(proxy, target, ctx)
    try:
        writer.write(target.request(absolute=absolute))
        await read_response(reader)
    finally:
        writer.close()


async def run_newconn(args: argparse.Namespace) -> None:
    """CONNECT + TLS + one request + close, `concurrency` at a time, over a host list."""
    proxy, target = parse_proxy(args.proxy), Target.parse(args.url)
    ctx = client_context(args.ca, check_hostname=not args.no_hostname_check)
    hosts = args.hosts.split(",") if args.hosts else [target.host]
    for _ in range(args.warmup_connections):
        await one_connection(proxy, target, ctx)
    emit("measure_start")
    start = time.monotonic()
    deadline = start + args.duration if args.count is None else float("inf")
    limit = args.count if args.count is not None else sys.maxsize
    picks = itertools.count()  # shared: each connection takes the next host in the list
    done, errors = 0, []

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            pick = next(picks)
            if pick >= limit:
                return
            host = hosts[pick % len(hosts)]
            try:
                await one_connection(proxy, target.with_host(host), ctx)
                done += 1
            except (OSError, LoadError, ssl.SSLError, asyncio.IncompleteReadError) as e:
                errors.append(e)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - start
    emit(
        "measure_end",
        connections=done,
        elapsed=elapsed,
        cps=done / elapsed,
        errors=len(errors),
        first_error=repr(errors[0]) if errors else None,
    )


async def run_idle(args: argparse.Namespace) -> None:
    """Open `count` connections, one request each, hold them idle until stdin closes."""
    proxy, target = parse_proxy(args.proxy), Target.parse(args.url)
    ctx = client_context(args.ca) if target.scheme == "https" else None
    await one_connection(proxy, target, ctx)  # warm-up: mint the certificate, load code
    await asyncio.sleep(0.5)
    emit("measure_start")
    held: list[asyncio.StreamWriter] = []
    errors: list[BaseException] = []
    gate = asyncio.Semaphore(args.concurrency)

    async def open_one() -> None:
        async with gate:
            try:
                reader, writer, absolute = await open_exchange_stream(proxy, target, ctx)
                writer.write(target.request(absolute=absolute))
                await read_response(reader)
                held.append(writer)
            except (OSError, LoadError, ssl.SSLError, asyncio.IncompleteReadError) as e:
                errors.append(e)

    await asyncio.gather(*(open_one() for _ in range(args.count)))
    await asyncio.sleep(args.settle)  # let the proxy finish its bookkeeping
    emit(
        "measure_end",
        connections=len(held),
        errors=len(errors),
        first_error=repr(errors[0]) if errors else None,
    )
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in held:
        writer.close()


# -- blocking side: the latency probe has no event loop in the way --------------------------


def read_blocking_response(sock: socket.socket, buf: bytearray) -> None:
    """Read one Content-Length response from sock; leftover bytes stay in buf."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise LoadError("connection closed mid-response")
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:head_end]).lower()
    if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
        raise LoadError(f"unexpected response: {bytes(buf[:100])!r}")
    marker = head.find(b"\r\ncontent-length:")
    if marker < 0:
        raise LoadError("latency probe needs a Content-Length response")
    length = int(head[marker + 17 : head.index(b"\r\n", marker + 2)])
    while len(buf) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise LoadError("connection closed mid-body")
        buf += chunk
    del buf[: head_end + length]


def run_latency(args: argparse.Namespace) -> None:
    """Sequential requests on one keep-alive connection; per-request wall time."""
    proxy, target = parse_proxy(args.proxy), Target.parse(args.url)
    if target.scheme != "http":
        raise SystemExit("proxy_load: latency uses plain http URLs")
    sock = socket.create_connection(proxy or (target.host, target.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request, buf = target.request(absolute=proxy is not None), bytearray()
    for _ in range(args.warmup_requests):
        sock.sendall(request)
        read_blocking_response(sock, buf)
    emit("measure_start")
    samples = []
    for _ in range(args.count):
        t0 = time.perf_counter()
        sock.sendall(request)
        read_blocking_response(sock, buf)
        samples.append(time.perf_counter() - t0)
    sock.close()
    q = statistics.quantiles(samples, n=100, method="inclusive")
    emit(
        "measure_end",
        requests=len(samples),
        p50_us=q[49] * 1e6,
        p99_us=q[98] * 1e6,
        mean_us=statistics.fmean(samples) * 1e6,
    )


def run_download(args: argparse.Namespace) -> None:
    """One GET of a big body into a reused buffer; throughput in MB/s (10^6 bytes)."""
    proxy, target = parse_proxy(args.proxy), Target.parse(args.url)
    if target.scheme != "http":
        raise SystemExit("proxy_load: download uses plain http URLs")
    sock = socket.create_connection(proxy or (target.host, target.port), timeout=30)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    emit("measure_start")
    start = time.perf_counter()
    sock.sendall(target.request(absolute=proxy is not None))
    n = sock.recv_into(buf)
    head_end = bytes(buf[: min(n, 65536)]).find(b"\r\n\r\n")
    head = bytes(buf[:head_end]).lower()
    if head_end < 0 or not head.startswith((b"http/1.1 200", b"http/1.0 200")):
        raise LoadError(f"unexpected response: {bytes(buf[:100])!r}")
    marker = head.find(b"\r\ncontent-length:")
    if marker < 0:
        raise LoadError("download needs a Content-Length response")
    length = int(head[marker + 17 :].split(b"\r\n", 1)[0])
    received = n - head_end - 4
    while received < length:
        n = sock.recv_into(view)
        if not n:
            raise LoadError(f"connection closed after {received} of {length} body bytes")
        received += n
    elapsed = time.perf_counter() - start
    sock.close()
    emit("measure_end", bytes=received, elapsed=elapsed, mb_per_s=received / elapsed / 1e6)


def raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--proxy", required=True, help="HOST:PORT of the proxy, or none")
    common.add_argument("--url", required=True, help="upstream URL to request")
    common.add_argument("--ca", help="CA file to verify TLS with (the proxy's CA when proxied)")
    k = sub.add_parser("keepalive", parents=[common], help="N keep-alive connections for D s")
    k.add_argument("--connections", type=int, default=50)
    k.add_argument("--duration", type=float, default=5.0)
    k.add_argument("--warmup", type=float, default=1.0)
    n = sub.add_parser("newconn", parents=[common], help="CONNECT+TLS+1 request+close")
    n.add_argument("--hosts", help="comma-separated hosts to cycle through (default: URL host)")
    n.add_argument("--count", type=int, help="exactly this many connections (else --duration)")
    n.add_argument("--duration", type=float, default=5.0)
    n.add_argument("--concurrency", type=int, default=10)
    n.add_argument("--warmup-connections", type=int, default=5)
    n.add_argument(
        "--no-hostname-check",
        action="store_true",
        help="verify the chain only (direct to an upstream whose certificate lacks the host)",
    )
    i = sub.add_parser("idle", parents=[common], help="hold N idle connections until stdin EOF")
    i.add_argument("--count", type=int, default=1000)
    i.add_argument("--concurrency", type=int, default=50)
    i.add_argument("--settle", type=float, default=1.0)
    lat = sub.add_parser("latency", parents=[common], help="sequential requests, p50/p99")
    lat.add_argument("--count", type=int, default=2000)
    lat.add_argument("--warmup-requests", type=int, default=100)
    d = sub.add_parser("download", parents=[common], help="one big body, MB/s")
    d.set_defaults(ca=None)
    return p


def run(args: argparse.Namespace) -> None:
    if args.command in ("latency", "download"):
        (run_latency if args.command == "latency" else run_download)(args)
        return
    runner = {"keepalive": run_keepalive, "newconn": run_newconn, "idle": run_idle}
    coro = runner[args.command](args)
    if uvloop is not None:
        uvloop.run(coro)
    else:
        asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raise_nofile_limit()
    try:
        run(args)
    except (OSError, LoadError, asyncio.IncompleteReadError, ValueError) as e:
        where = "the proxy" if args.proxy != "none" else "the upstream"
        print(f"proxy_load: {args.command} failed talking to {where}: {e!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
