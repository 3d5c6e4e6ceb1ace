"""The replay engine: re-send recorded requests through the project's own client.

``replay_flow`` sends one recorded request with ``protocol.HTTPConnection`` /
``HTTPSConnection`` exactly as recorded (method, target, header order and case, body;
prepared by request.py), or over HTTP/2 again when it was recorded over HTTP/2
(http2.py), and returns the new exchange as a Flow (``mode="replay"``,
``replay_of`` = the original). ``run_replays`` replays many on a thread pool, with a
rate limit, handing outcomes back in capture order; Ctrl-C cuts sends under way short.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import protocol
from inspector.config import DEFAULT_BODY_LIMIT, Endpoint
from inspector.failures import flow_error
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse, Phase, Timings
from inspector.replay.body import BodyRecorder
from inspector.replay.http2 import Cancel, H2Replay, trailers_asked
from inspector.replay.request import (
    ReplayError,
    authority,
    check_replayable,
    outgoing_headers,
    skip_reason,
)

_READ_SIZE = 64 * 1024


@dataclass(slots=True)
class ReplayOptions:
    target: Endpoint | None = None  # None: the recorded scheme://host:port
    keep_host: bool = False  # send the recorded Host header even when the target differs
    timeout: float = 30.0
    insecure: bool = False
    upstream_ca: Path | None = None
    body_limit: int = DEFAULT_BODY_LIMIT
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict, repr=False)

    def tls_context(self, alpn: str = "http/1.1") -> ssl.SSLContext:
        """One client context per protocol and run (building one loads the trust store).

        ``alpn="h2"`` offers HTTP/2 first (then http/1.1, so that a server without it
        says what it speaks instead of failing the handshake).
        """
        ctx = self._contexts.get(alpn)
        if ctx is None:
            ctx = _client_context(self.insecure, self.upstream_ca)
            if alpn == "h2":
                ctx.set_alpn_protocols(["h2", "http/1.1"])
            self._contexts[alpn] = ctx
        return ctx


def _client_context(insecure: bool, ca_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def replay_request(flow: Flow, options: ReplayOptions) -> FlowRequest:
    """The request a replay sends: the recorded one pointed at the target."""
    rec = flow.request
    target = options.target or Endpoint(rec.scheme, rec.host, rec.port)
    host = None if options.keep_host else authority(target)
    h2 = rec.http_version == "HTTP/2"
    headers = outgoing_headers(rec, host)
    if h2 and trailers_asked(rec):  # the one TE value HTTP/2 allows, and gRPC requires
        headers.append((b"te", b"trailers"))
    return FlowRequest(
        method=rec.method,
        scheme=target.scheme,
        host=target.host,
        port=target.port,
        path=rec.path,
        http_version="HTTP/2" if h2 else "HTTP/1.1",
        headers=headers,
        body=FlowBody(data=rec.body.data, size=len(rec.body.data), sha256=rec.body.sha256),
        timestamp=time.time(),
    )


def replay_flow(flow: Flow, options: ReplayOptions, *, in_flight: InFlight | None = None) -> Flow:
    """Send ``flow``'s request again; the new Flow holds the response or the error.

    Raises ReplayError (before sending anything) when the flow cannot be replayed.
    ``in_flight`` lets another thread cut the exchange short (Ctrl-C).
    """
    check_replayable(flow)
    request = replay_request(flow, options)
    new = Flow(
        request=request, mode="replay", replay_of=flow.id, timings=Timings(start=time.time())
    )
    new.request.timestamp = new.timings.start
    if request.http_version == "HTTP/2":
        asyncio.run(_exchange_h2(new, options, in_flight or InFlight()))
    else:
        _exchange(new, options, in_flight or InFlight())
    return new


async def _exchange_h2(flow: Flow, options: ReplayOptions, in_flight: InFlight) -> None:
    tls = options.tls_context("h2") if flow.request.scheme == "https" else None
    cancel = Cancel()
    try:
        in_flight.add(cancel)
    except InterruptedError as e:
        flow.error = flow_error(e, Phase.CONNECT)
        flow.timings.end = time.time()
        return
    try:
        await H2Replay(flow, tls, options.timeout, BodyRecorder(options.body_limit)).run()
    finally:
        in_flight.discard(cancel)


class InFlight:
    """The connections replays are using right now, so that Ctrl-C can cut them short."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: set[protocol.HTTPConnection | Cancel] = set()
        self.aborted = False

    def add(self, conn: protocol.HTTPConnection | Cancel) -> None:
        with self._lock:
            if self.aborted:
                raise InterruptedError("replay interrupted")
            self._conns.add(conn)

    def discard(self, conn: protocol.HTTPConnection | Cancel) -> None:
        with self._lock:
            self._conns.discard(conn)

    def abort(self) -> None:
        """Shut every open connection down; threads blocked on them wake with an error."""
        with self._lock:
            self.aborted = True
            conns = list(self._conns)
        for conn in conns:
            if isinstance(conn, Cancel):  # an HTTP/2 replay: its task ends, closing the socket
                conn.cancel()
                continue
            sock = getattr(conn, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _exchange(flow: Flow, options: ReplayOptions, in_flight: InFlight) -> None:
    req, timings = flow.request, flow.timings
    phase = Phase.CONNECT
    conn = _connection(req, options)
    try:
        in_flight.add(conn)
        timings.connect_start = time.time()
        conn.connect()
        timings.connect_end = time.time()
        if in_flight.aborted:  # Ctrl-C came while connecting: send nothing
            raise InterruptedError("replay interrupted")
        if req.scheme == "https":
            phase = Phase.TLS
            timings.tls_end = timings.connect_end
        phase = Phase.SEND
        conn.putrequest(req.method, req.path, skip_host=True, skip_accept_encoding=True)
        for name, value in req.headers:
            conn.putheader(name, value)
        conn.endheaders(req.body.data or None)
        timings.request_sent = time.time()
        phase = Phase.STATUS_LINE
        resp = conn.getresponse()
        timings.response_start = time.time()
        flow.response = _response_head(resp)
        phase = Phase.BODY
        flow.response.body = _read_body(resp, options.body_limit)
    except Exception as e:
        flow.error = flow_error(e, _refine_phase(phase, e))
    finally:
        in_flight.discard(conn)
        conn.close()
        timings.end = time.time()


def _connection(req: FlowRequest, options: ReplayOptions) -> protocol.HTTPConnection:
    if req.scheme == "https":
        return protocol.HTTPSConnection(
            req.host, req.port, timeout=options.timeout, context=options.tls_context()
        )
    return protocol.HTTPConnection(req.host, req.port, timeout=options.timeout)


def _refine_phase(phase: Phase, error: Exception) -> Phase:
    if phase == Phase.CONNECT and isinstance(error, ssl.SSLError):
        return Phase.TLS
    if phase == Phase.STATUS_LINE and isinstance(error, protocol.LineTooLong):
        return Phase.HEADERS
    return phase


def _text_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", errors="replace")


def _response_head(resp: protocol.HTTPResponse) -> FlowResponse:
    version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(resp.version, "HTTP/1.1")
    headers = [(_text_bytes(n), _text_bytes(v)) for n, v in resp.getheaders()]
    reason = resp.reason if isinstance(resp.reason, str) else resp.reason.decode("latin-1")
    return FlowResponse(
        status_code=resp.status,
        reason=reason,
        http_version=version,
        headers=headers,
        timestamp=time.time(),
    )


def _read_body(resp: protocol.HTTPResponse, limit: int) -> FlowBody:
    recorder = BodyRecorder(limit)
    while chunk := resp.read(_READ_SIZE):
        recorder.add(chunk)
    return recorder.body()


@dataclass(slots=True)
class Outcome:
    """What happened to one selected flow."""

    original: Flow
    new: Flow | None = None  # the replay (with a response or an error)
    skipped: str | None = None  # why it was not replayed (CONNECT, WebSocket)
    refused: str | None = None  # why it could not be replayed (ReplayError)


def replay_one(flow: Flow, options: ReplayOptions, in_flight: InFlight) -> Outcome:
    reason = skip_reason(flow)
    if reason is not None:
        return Outcome(flow, skipped=reason)
    try:
        return Outcome(flow, new=replay_flow(flow, options, in_flight=in_flight))
    except ReplayError as e:
        return Outcome(flow, refused=str(e))


class RateLimiter:
    """A token bucket holding one token: at most ``rate`` sends per second, evenly spaced."""

    def __init__(self, rate: float | None, *, clock=time.monotonic, sleep=time.sleep) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = clock()

    def wait(self) -> None:
        """Return when the next send may go."""
        if not self.interval:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = max(self._next, now) + self.interval


def run_replays(
    flows: Iterator[Flow],
    options: ReplayOptions,
    *,
    concurrency: int,
    rate: float | None,
    on_outcome: Callable[[Outcome], None],
) -> bool:
    """Replay ``flows`` on a thread pool, calling ``on_outcome`` in capture order.

    Returns False when interrupted by Ctrl-C (pending sends are cancelled).
    """
    limiter = RateLimiter(rate)
    in_flight = InFlight()
    window: deque[Future[Outcome]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay")
    finished = False
    try:
        for flow in flows:
            limiter.wait()
            window.append(pool.submit(replay_one, flow, options, in_flight))
            while window and (window[0].done() or len(window) > 2 * concurrency):
                on_outcome(window.popleft().result())
        while window:
            on_outcome(window.popleft().result())
        finished = True
    except KeyboardInterrupt:
        return False
    finally:
        if not finished:  # Ctrl-C, or the output went away: stop everything now
            for future in window:
                future.cancel()
            in_flight.abort()  # sends under way end now instead of at their timeout
        pool.shutdown(wait=True, cancel_futures=True)
    return True
