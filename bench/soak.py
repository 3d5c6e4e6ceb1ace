"""Soak run: our proxy under a bounded mix of normal, hostile and failing traffic.

    python bench/soak.py                 # 180 s of load
    python bench/soak.py --seconds 60 --clients 200

Everything is on loopback. The proxy is the real ``inspector dump -q`` subprocess
(``--read-timeout 2``), in front of two upstreams run in a child process: a healthy
asyncio server (plain and TLS) and a failing one with one path per fault (reset,
garbage status line, hang, truncated body; "refuse" is a closed port). ``--clients``
asyncio clients on raw sockets each pick, per request, a normal exchange (70%: keep-alive
GET, POST and chunked responses, a fifth of them HTTPS through CONNECT), a hostile
request from the corpus of ``tests/corpus_requests.py`` (15%) or a request to a
failing upstream (15%).

Every normal exchange the client saw complete (body checked) carries a unique id in its
query; after the load every one must be in the session store, read with
``inspector.store.Store`` while the proxy still runs and again after its SIGINT. The
proxy's RSS (VmRSS) is sampled after warm-up + 5 s idle (baseline), every 0.5 s under
load (peak), after 5 s idle and once its upstream pool has drained. Its descriptors are
counted at the same points, sockets sorted by peer (upstream, client, other) through
/proc/PID/net/tcp: idle pooled upstream connections are legitimate until the pool's idle
timeout, so the leak check is "no upstream or client socket left once drained, and no
more other descriptors than at baseline".

Prints a markdown table (what each client saw per fault, hostile cases answered
otherwise than the corpus expects) and exits 1 if a normal exchange failed or is missing
from the session, if descriptors leaked, or if the proxy did not survive and stop
cleanly (exit 0 on SIGINT).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

if __package__ in (None, ""):  # run as a script: make `tests` and `inspector` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inspector.store import Store
from tests.corpus import CLOSED, Case
from tests.corpus_requests import REQUESTS as CORPUS
from tests.hostile_harness import UP
from tests.proxy_process import ProxyProcess

try:
    import uvloop
except ImportError:  # plain asyncio works too, just with slower clients
    uvloop = None

READ_TIMEOUT = 2  # the proxy's --read-timeout: the "hang" fault answers 504 after it
FAULTS = ("refuse", "reset", "garbage", "hang", "truncated")
# What a client should see for each fault: a status, or "cut" (head, then the body stops).
EXPECTED_FAULT = {
    "refuse": "502",
    "reset": "502",
    "garbage": "502",
    "hang": "504",
    "truncated": "cut",
}
SMALL_BODY = b'{"status":"ok","items":[' + b",".join(b'"item-%02d"' % i for i in range(16)) + b"]}"
KNOWN_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"))
CHUNKED_SIZE = 16 * 1024
POST_SIZE = 1024
CLIENT_TIMEOUT = 30.0  # a normal exchange that takes longer counts as failed
FD_MARGIN = 4  # "other" descriptors the proxy may hold beyond baseline
IDLE_AFTER = 5.0
RSS_PARTS = ("RssAnon", "RssFile", "RssShmem")
# The proxy keeps idle upstream connections for 30 s (its pool sweeps every 15 s): after
# that long with no traffic every upstream connection must be gone, or it leaked.
DRAIN_LIMIT = 60.0


# --- upstreams (a child process, so their CPU is not the clients') -----------------------


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        out = bytearray()
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    length = int(headers.get(b"content-length", b"0"))
    return await reader.readexactly(length) if length else b""


def _parse_head(head: bytes) -> tuple[bytes, bytes, dict[bytes, bytes]]:
    """(first word, second word, lower-cased headers) of a request or response head."""
    lines = head.split(b"\r\n")
    first, second, _ = lines[0].split(b" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    return first, second, headers


def _healthy_answer(method: bytes, target: bytes, body: bytes) -> bytes:
    if method not in KNOWN_METHODS:  # as real servers do (the corpus expects it)
        return b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    path = target.split(b"?")[0]
    if path == b"/chunked":
        chunk = b"c" * (CHUNKED_SIZE // 4)
        pieces = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4))
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + pieces + b"0\r\n\r\n"
    payload = b"%d" % len(body) if path == b"/post" else SMALL_BODY
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(payload) + (b"" if method == b"HEAD" else payload)


async def _serve_healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            method, target, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            body = await _read_body(reader, headers)
            writer.write(_healthy_answer(method, target, body))
            await writer.drain()
            if headers.get(b"connection", b"").lower() == b"close" or method not in KNOWN_METHODS:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
        pass
    finally:
        writer.close()


async def _serve_failing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        _, target, _ = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        fault = target.split(b"?")[0].strip(b"/").decode()
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        elif fault == "garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        elif fault == "hang":
            await reader.read()  # silent until the proxy gives up and closes
        elif fault == "truncated":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-this")
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
        pass
    finally:
        writer.close()


async def _upstreams(pipe, tls: ssl.SSLContext) -> None:  # type: ignore[no-untyped-def]
    limit = 256 * 1024
    healthy = await asyncio.start_server(_serve_healthy, "127.0.0.1", 0, limit=limit, backlog=1024)
    secure = await asyncio.start_server(
        _serve_healthy, "127.0.0.1", 0, ssl=tls, limit=limit, backlog=1024
    )
    failing = await asyncio.start_server(_serve_failing, "127.0.0.1", 0, backlog=1024)
    pipe.send([s.sockets[0].getsockname()[1] for s in (healthy, secure, failing)])
    await asyncio.get_running_loop().create_future()  # serve until terminated


def upstreams_main(pipe, cert_pem: bytes, key_pem: bytes) -> None:  # type: ignore[no-untyped-def]
    """Child process entry point: send the ports on ``pipe``, serve until terminated."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        tls.load_cert_chain(cert, key)
    run = uvloop.run if uvloop is not None else asyncio.run
    run(_upstreams(pipe, tls))


# --- the proxy under test -----------------------------------------------------------------


class SoakProxy:
    """``inspector dump`` as a subprocess, its output drained so it never blocks."""

    def __init__(self, tmp: Path, upstream_ca: Path) -> None:
        args = ("-q", "--read-timeout", str(READ_TIMEOUT), "--upstream-ca", str(upstream_ca))
        self.process = ProxyProcess(tmp, *args)
        self.pid = self.process.proc.pid
        self.error_lines = 0
        self._drains = [
            threading.Thread(target=self._drain_stdout, daemon=True),
        ]
        for t in self._drains:
            t.start()

    def _drain_stdout(self) -> None:
        assert self.process.proc.stdout is not None
        for line in self.process.proc.stdout:
            if b" -> ERROR " in line:
                self.error_lines += 1

    def alive(self) -> bool:
        return self.process.proc.poll() is None

    def rss_kib(self, part: str = "VmRSS") -> int:
        """VmRSS, or one of its parts (RssAnon: heap; RssFile; RssShmem: SQLite's -shm)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(f"{part}:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no {part} in /proc/{self.pid}/status")

    def rss_parts(self) -> str:
        return ", ".join(f"{p[3:].lower()} {mib(self.rss_kib(p))}" for p in RSS_PARTS)

    def fds(self, ports: Ports) -> Fds:
        """The proxy's open descriptors, sockets sorted by the TCP peer they lead to."""
        connections = _tcp_connections(self.pid)
        fds = Fds()
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{name}")
            except OSError:
                continue  # closed while we looked
            local, remote = connections.get(target, (0, 0))
            fds.total += 1
            if remote in (ports.healthy, ports.secure, ports.failing):
                fds.upstream += 1
            elif local == self.process.port and remote:
                fds.client += 1
        return fds

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT (the graceful stop), wait; the exit status (killed if it hangs)."""
        proc = self.process.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:  # hung on shutdown: that shows as -9
            proc.kill()
            proc.wait()
        for t in self._drains:
            t.join(5)
        return proc.returncode


@dataclass
class Fds:
    total: int = 0
    upstream: int = 0  # connections to the upstreams (idle in the pool, or leaked)
    client: int = 0  # accepted client connections

    @property
    def other(self) -> int:
        """Listening socket, session files, pipes, event loop: should not grow."""
        return self.total - self.upstream - self.client

    def __str__(self) -> str:
        return f"{self.total} ({self.upstream} upstream, {self.client} client, {self.other} other)"


def _tcp_connections(pid: int) -> dict[str, tuple[int, int]]:
    """``socket:[inode]`` -> (local port, remote port) from /proc/PID/net/tcp{,6}."""
    found = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, remote, inode = cols[1], cols[2], cols[9]
            ports = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
            found[f"socket:[{inode}]"] = ports
    return found


# --- clients ------------------------------------------------------------------------------


@dataclass
class Ports:
    healthy: int
    secure: int
    failing: int
    closed: int  # nothing listens here: the "refuse" fault


@dataclass
class Tally:
    finished: dict[str, str] = field(default_factory=dict)  # id -> kind, seen complete
    normal_failures: Counter[str] = field(default_factory=Counter)
    hostile: Counter[str] = field(default_factory=Counter)  # "as expected" / case: got
    faults: Counter[tuple[str, str]] = field(default_factory=Counter)  # (fault, outcome)
    harness_errors: Counter[str] = field(default_factory=Counter)  # bugs of this script
    sequence: int = 0

    def next_id(self, client: int) -> str:
        self.sequence += 1
        return f"s{client}-{self.sequence}"


class ProxyDied(Exception):
    """The proxy process exited during the soak."""


class Cut(Exception):
    """The response head arrived but its body stopped short."""


async def read_response(
    reader: asyncio.StreamReader, method: str = "GET"
) -> tuple[int, bytes, bool]:
    """One response: (status, body, keep-alive). 1xx heads are skipped."""
    while True:
        _, code, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        status = int(code)
        if status >= 200:
            break
    keep = headers.get(b"connection", b"").lower() != b"close"
    try:
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif b"transfer-encoding" in headers or b"content-length" in headers:
            body = await _read_body(reader, headers)
        else:
            body, keep = await reader.read(), False
    except (asyncio.IncompleteReadError, ValueError, ConnectionError) as e:
        raise Cut(str(e)) from e
    return status, body, keep


def _request(method: str, target: str, host: str, body: bytes = b"", close: bool = False) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class NormalClient:
    """Keep-alive connections (one plain, one HTTPS tunnel) sending verified requests."""

    def __init__(self, n: int, proxy: tuple[str, int], ports: Ports, ctx: ssl.SSLContext,
                 tally: Tally) -> None:  # fmt: skip
        self.n, self.proxy, self.ports, self.ctx, self.tally = n, proxy, ports, ctx, tally
        self.conns: dict[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def _connection(self, tls: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if tls in self.conns:
            return self.conns[tls]
        reader, writer = await asyncio.open_connection(*self.proxy, limit=256 * 1024)
        if tls:
            authority = f"127.0.0.1:{self.ports.secure}"
            writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
            status_line = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r")[0]
            if not status_line.startswith(b"HTTP/1.1 200"):
                writer.close()
                raise ValueError(f"CONNECT answered {status_line!r}")
            await writer.start_tls(self.ctx, server_hostname="127.0.0.1")
        self.conns[tls] = (reader, writer)
        return reader, writer

    def _drop(self, tls: bool) -> None:
        reader_writer = self.conns.pop(tls, None)
        if reader_writer is not None:
            reader_writer[1].close()

    async def exchange(self) -> None:
        tls = random.random() < 0.2
        rid = self.tally.next_id(self.n)
        kind = random.choices(("get", "post", "chunked"), (60, 25, 15))[0]
        port = self.ports.secure if tls else self.ports.healthy
        host = f"127.0.0.1:{port}"
        path = {"get": "/small", "post": "/post", "chunked": "/chunked"}[kind] + f"?soak={rid}"
        target = path if tls else f"http://{host}{path}"
        body = os.urandom(POST_SIZE // 2).hex().encode() if kind == "post" else b""
        expected = {"get": SMALL_BODY, "post": b"%d" % POST_SIZE, "chunked": b"c" * CHUNKED_SIZE}
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT):
                reader, writer = await self._connection(tls)
                writer.write(_request("POST" if kind == "post" else "GET", target, host, body))
                status, got, keep = await read_response(reader)
        except (OSError, ValueError, TimeoutError, Cut, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ssl.SSLError) as e:  # fmt: skip
            self.tally.normal_failures[f"{type(e).__name__}: {str(e)[:60]}"] += 1
            self._drop(tls)
            return
        if status != 200 or got != expected[kind]:
            self.tally.normal_failures[f"wrong answer: {status}, {len(got)} bytes"] += 1
            self._drop(tls)
            return
        self.tally.finished[rid] = "https" if tls else "http"
        if not keep or random.random() < 0.02:  # some churn: new connections too
            self._drop(tls)

    def close(self) -> None:
        for tls in list(self.conns):
            self._drop(tls)


async def hostile_exchange(proxy: tuple[str, int], upstream_port: int, tally: Tally) -> None:
    case: Case = random.choice(CORPUS)
    data = case.data.replace(UP, f"127.0.0.1:{upstream_port}".encode())
    outcome = await _hostile_outcome(proxy, case, data)
    tally.hostile["as expected" if outcome == "ok" else f"{case.name}: {outcome}"] += 1


async def _hostile_outcome(proxy: tuple[str, int], case: Case, data: bytes) -> str:
    try:
        reader, writer = await asyncio.open_connection(*proxy, limit=1024 * 1024)
    except OSError as e:
        return f"connect failed ({e})"
    try:
        try:
            writer.write(data)
            await writer.drain()
            if case.half_close:
                writer.write_eof()
        except OSError:
            pass  # the proxy may hang up before reading everything
        try:
            async with asyncio.timeout(10):
                status, _, _ = await read_response(reader)
        except (asyncio.IncompleteReadError, ConnectionError, Cut):
            status = CLOSED
        except (TimeoutError, ValueError, IndexError) as e:
            return f"no usable answer ({type(e).__name__})"
        if status not in case.statuses:
            return f"got {status or 'no response'}"
        if status >= 400 or status == CLOSED:
            try:
                async with asyncio.timeout(5):
                    while await reader.read(65536):
                        pass
            except TimeoutError:
                return f"left open after {status}"
            except ConnectionError:
                pass
        return "ok"
    finally:
        writer.close()


async def fault_exchange(proxy: tuple[str, int], ports: Ports, tally: Tally, n: int) -> None:
    fault = random.choice(FAULTS)
    port = ports.closed if fault == "refuse" else ports.failing
    host = f"127.0.0.1:{port}"
    request = _request("GET", f"http://{host}/{fault}?soak-fault={n}", host, close=True)
    try:
        reader, writer = await asyncio.open_connection(*proxy)
    except OSError as e:
        tally.faults[fault, f"connect {type(e).__name__}"] += 1
        return
    try:
        async with asyncio.timeout(READ_TIMEOUT * 5):
            writer.write(request)
            status, _, _ = await read_response(reader)
            outcome = str(status)
    except Cut:
        outcome = "cut"
    except (asyncio.IncompleteReadError, ConnectionError):
        outcome = "closed"
    except TimeoutError:
        outcome = "timeout"
    finally:
        writer.close()
    tally.faults[fault, outcome] += 1


async def client(n: int, deadline: float, proxy: tuple[str, int], ports: Ports,
                 ctx: ssl.SSLContext, tally: Tally) -> None:  # fmt: skip
    normal = NormalClient(n, proxy, ports, ctx, tally)
    try:
        while time.monotonic() < deadline:
            kind = random.choices(("normal", "hostile", "fault"), (70, 15, 15))[0]
            try:
                if kind == "normal":
                    await normal.exchange()
                elif kind == "hostile":
                    await hostile_exchange(proxy, ports.healthy, tally)
                else:
                    await fault_exchange(proxy, ports, tally, n)
            except Exception as e:
                tally.harness_errors[f"{kind}: {type(e).__name__}: {str(e)[:80]}"] += 1
    finally:
        normal.close()


@dataclass
class Memory:
    baseline_kib: int = 0
    peak_kib: int = 0
    after_kib: int = 0
    drained_kib: int = 0
    baseline_parts: str = ""
    drained_parts: str = ""
    fds_baseline: Fds = field(default_factory=Fds)
    fds_after: Fds = field(default_factory=Fds)
    fds_drained: Fds = field(default_factory=Fds)
    drain_seconds: float = 0.0
    max_backlog: int = 0  # normal exchanges finished but not yet in the session, at most
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s, KiB, exchanges)

    def trend(self) -> str:
        """RSS at each quarter of the load, with the exchanges done by then: a leak grows."""
        if not self.samples:
            return "no samples"
        picks = [self.samples[min(len(self.samples) - 1, len(self.samples) * q // 4)]
                 for q in (0, 1, 2, 3, 4)]  # fmt: skip
        return ", ".join(f"{t:.0f} s: {mib(kib)} / {n} exchanges" for t, kib, n in picks)


async def load(seconds: float, clients: int, proxy: SoakProxy, ports: Ports,
               ctx: ssl.SSLContext, tally: Tally, memory: Memory) -> None:  # fmt: skip
    """``clients`` concurrent clients for ``seconds``, sampling the proxy's RSS meanwhile."""
    address = (proxy.process.host, proxy.process.port)
    deadline = time.monotonic() + seconds
    tasks = [
        asyncio.create_task(client(n, deadline, address, ports, ctx, tally)) for n in range(clients)
    ]
    started = time.monotonic()
    backlog = asyncio.create_task(watch_backlog(proxy.process.session, tally, memory))
    try:
        while not all(t.done() for t in tasks):
            if not proxy.alive():
                for t in tasks:
                    t.cancel()
                raise ProxyDied(f"the proxy exited with status {proxy.process.proc.returncode}")
            rss = proxy.rss_kib()
            memory.peak_kib = max(memory.peak_kib, rss)
            memory.samples.append((time.monotonic() - started, rss, len(tally.finished)))
            await asyncio.wait(tasks, timeout=0.5)
    finally:
        backlog.cancel()


async def watch_backlog(session: Path, tally: Tally, memory: Memory) -> None:
    """Every 2 s: normal exchanges the clients saw finish that the session does not hold yet.

    That is what a crash at that moment would lose; an upper bound, as the clients'
    count is taken before the store is read.
    """
    store = None
    try:
        while True:
            await asyncio.sleep(2)
            if store is None:
                store = Store(session, readonly=True)
            seen = len(tally.finished)
            stored = await asyncio.to_thread(store.count, "~u soak=")
            memory.max_backlog = max(memory.max_backlog, seen - stored)
    finally:
        if store is not None:
            store.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: connecting is refused


def stored_ids(session: Path) -> set[str]:
    ids: set[str] = set()
    with Store(session, readonly=True) as store:
        offset = 0
        while page := store.summaries(offset, 20_000):
            offset += len(page)
            for flow in page:
                soak = parse_qs(urlsplit(flow.request.path).query).get("soak")
                if soak:
                    ids.add(soak[0])
    return ids


async def soak(args: argparse.Namespace, proxy: SoakProxy, ports: Ports, tally: Tally,
               memory: Memory) -> None:  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(proxy.process.confdir / "ca.pem"))
    print(f"soak: warm-up {args.warmup:g} s", file=sys.stderr)
    await load(args.warmup, args.clients, proxy, ports, ctx, tally, memory)
    await asyncio.sleep(IDLE_AFTER)
    memory.baseline_kib, memory.fds_baseline = proxy.rss_kib(), proxy.fds(ports)
    memory.baseline_parts = proxy.rss_parts()
    memory.peak_kib = memory.baseline_kib
    memory.samples.clear()  # the trend is the measured load's only
    print(f"soak: {args.clients} clients for {args.seconds:g} s", file=sys.stderr)
    await load(args.seconds, args.clients, proxy, ports, ctx, tally, memory)
    await asyncio.sleep(IDLE_AFTER)
    memory.after_kib, memory.fds_after = proxy.rss_kib(), proxy.fds(ports)
    print(f"soak: idle until the upstream pool drains (<= {DRAIN_LIMIT:g} s)", file=sys.stderr)
    started = time.monotonic()
    while time.monotonic() - started < DRAIN_LIMIT:
        memory.fds_drained = proxy.fds(ports)
        if not memory.fds_drained.upstream:
            break
        await asyncio.sleep(1)
    memory.drain_seconds = IDLE_AFTER + time.monotonic() - started
    memory.drained_kib, memory.drained_parts = proxy.rss_kib(), proxy.rss_parts()


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def report(args: argparse.Namespace, tally: Tally, memory: Memory, found: int,
           found_running: int, exit_status: int, proxy: SoakProxy) -> list[str]:  # fmt: skip
    """Print the results table; returns the reasons the run failed (none: passed)."""
    expected = len(tally.finished)
    failures = []
    if found != expected:
        failures.append(f"{expected - found} normal exchanges missing from the session")
    if tally.normal_failures:
        failures.append(f"{sum(tally.normal_failures.values())} normal exchanges failed")
    if tally.harness_errors:
        failures.append(f"{sum(tally.harness_errors.values())} errors in the soak script itself")
    leaked = memory.fds_drained.other - memory.fds_baseline.other
    if leaked > FD_MARGIN:
        failures.append(f"{leaked} file descriptors leaked (not sockets to peers)")
    if memory.fds_drained.upstream:
        failures.append(f"{memory.fds_drained.upstream} upstream connections never closed")
    if memory.fds_after.client:
        failures.append(f"{memory.fds_after.client} client connections left open while idle")
    if exit_status != 0:
        failures.append(f"the proxy exited with status {exit_status} on SIGINT")
    https = sum(1 for kind in tally.finished.values() if kind == "https")
    hostile_total = sum(tally.hostile.values())
    rows = [
        ("load", f"{args.clients} clients, {args.warmup:g} s warm-up + {args.seconds:g} s"),
        ("normal exchanges completed", f"{expected} ({https} over HTTPS), "
         f"{expected / (args.warmup + args.seconds):.0f}/s"),
        ("normal exchanges failed", str(sum(tally.normal_failures.values()))),
        ("not yet in the session under load (max, sampled every 2 s)", str(memory.max_backlog)),
        ("in the session store, proxy running (idle)", f"{found_running} / {expected}"),
        ("in the session store, after SIGINT", f"{found} / {expected}"),
        ("hostile requests (corpus)", f"{hostile_total}, {tally.hostile['as expected']} "
         "answered as the corpus expects"),
        *[(f"failing upstream: {f}", _fault_cell(tally, f)) for f in FAULTS],
        ("exception lines printed by dump", str(proxy.error_lines)),
        ("RSS baseline (after warm-up)", f"{mib(memory.baseline_kib)} ({memory.baseline_parts})"),
        ("RSS peak", mib(memory.peak_kib)),
        ("RSS during the load", memory.trend()),
        (f"RSS after {IDLE_AFTER:g} s idle", f"{mib(memory.after_kib)} "
         f"({(memory.after_kib - memory.baseline_kib) / 1024:+.1f} MiB vs baseline)"),
        (f"RSS after {memory.drain_seconds:.0f} s idle (pool drained)",
         f"{mib(memory.drained_kib)} "
         f"({(memory.drained_kib - memory.baseline_kib) / 1024:+.1f} MiB vs baseline; "
         f"{memory.drained_parts})"),
        ("open fds baseline (after warm-up)", str(memory.fds_baseline)),
        (f"open fds after {IDLE_AFTER:g} s idle", str(memory.fds_after)),
        (f"open fds after {memory.drain_seconds:.0f} s idle", str(memory.fds_drained)),
        ("proxy exit status (SIGINT)", str(exit_status)),
        ("result", "PASS" if not failures else "FAIL: " + "; ".join(failures)),
    ]  # fmt: skip
    print("| metric | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    for label, counter in (("normal failures", tally.normal_failures),
                           ("hostile cases not as expected", tally.hostile),
                           ("soak script errors", tally.harness_errors)):  # fmt: skip
        odd = [(k, v) for k, v in counter.most_common() if k != "as expected"]
        if odd:
            print(f"\n{label}:")
            for k, v in odd[:20]:
                print(f"- {k}: {v}")
    return failures


def _fault_cell(tally: Tally, fault: str) -> str:
    outcomes = {o: c for (f, o), c in tally.faults.items() if f == fault}
    text = ", ".join(f"{o}: {c}" for o, c in sorted(outcomes.items(), key=lambda i: -i[1]))
    return f"{text or 'none'} (expected {EXPECTED_FAULT[fault]})"


def start_upstreams(ca: trustme.CA) -> tuple[multiprocessing.Process, Ports]:
    """The upstreams' child process (forked: nothing to pickle) and their ports."""
    leaf = ca.issue_cert("127.0.0.1")
    fork = multiprocessing.get_context("fork")
    parent, child = fork.Pipe()
    process = fork.Process(
        target=upstreams_main,
        args=(child, leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()),
        daemon=True,
    )
    process.start()
    if not parent.poll(30):
        process.terminate()
        raise SystemExit("soak: the upstream servers did not start within 30 s")
    return process, Ports(*parent.recv(), closed=closed_port())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="load time (default 180)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up load time")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients <= 0 or args.warmup < 0:
        parser.error("--seconds and --clients must be positive, --warmup not negative")
    ca = trustme.CA()
    upstreams, ports = start_upstreams(ca)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        ca_file = Path(tmp, "upstream-ca.pem")
        ca.cert_pem.write_to_path(str(ca_file))
        proxy = SoakProxy(Path(tmp), ca_file)
        tally, memory = Tally(), Memory()
        try:
            run = uvloop.run if uvloop is not None else asyncio.run
            run(soak(args, proxy, ports, tally, memory))
            found_running = len(stored_ids(proxy.process.session) & tally.finished.keys())
        except ProxyDied as e:
            failures = [str(e)]
        except KeyboardInterrupt:
            print("soak: interrupted; nothing to report", file=sys.stderr)
            return 130
        else:
            failures = []
        finally:
            exit_status = proxy.stop()
            upstreams.terminate()
            upstreams.join(10)
        if not failures:
            found = len(stored_ids(proxy.process.session) & tally.finished.keys())
            failures = report(args, tally, memory, found, found_running, exit_status, proxy)
        else:
            print(f"soak: FAIL: {failures[0]}", file=sys.stderr)
    if failures and proxy.process.stderr_lines:
        tail = "".join(proxy.process.stderr_lines[-20:])
        print("\nproxy stderr (last lines):\n" + tail, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
