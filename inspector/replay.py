"""Re-send captured requests through the project's own client and compare the answers.

``replay_flow`` sends one recorded request with ``protocol.HTTPConnection`` /
``HTTPSConnection`` exactly as recorded (method, target, header order and case, body)
and returns the new exchange as a Flow (``mode="replay"``, ``replay_of`` = the original).
``main`` is ``inspector replay``: it replays a session in capture order, with optional
concurrency and rate limit, records every replay, and reports differences.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

import protocol
from inspector.config import DEFAULT_BODY_LIMIT, ConfigError, Endpoint
from inspector.diff import ResponseDiff, compare
from inspector.failures import flow_error
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse, Phase, Timings
from inspector.render import flow_line, human_size, status_text
from inspector.sessions import open_session, selected_ids
from protocol.authority import format_authority
from protocol.headers import HeaderPairs, Headers

if TYPE_CHECKING:
    from inspector.store import Store

# Hop-by-hop fields (RFC 9110 section 7.6.1) and the framing we rebuild from the body.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
_READ_SIZE = 64 * 1024


class ReplayError(Exception):
    """A recorded request that cannot be replayed faithfully; the message says why."""


@dataclass(slots=True)
class ReplayOptions:
    target: Endpoint | None = None  # None: the recorded scheme://host:port
    keep_host: bool = False  # send the recorded Host header even when the target differs
    timeout: float = 30.0
    insecure: bool = False
    upstream_ca: Path | None = None
    body_limit: int = DEFAULT_BODY_LIMIT
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict, repr=False)

    def tls_context(self) -> ssl.SSLContext:
        """One client context per run (building one loads the trust store)."""
        ctx = self._contexts.get("tls")
        if ctx is None:
            ctx = _client_context(self.insecure, self.upstream_ca)
            self._contexts["tls"] = ctx
        return ctx


def _client_context(insecure: bool, ca_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_target(url: str) -> Endpoint:
    """``--target``: scheme://host[:port] only; the recorded paths are kept."""
    endpoint = Endpoint.parse(url, "--target")
    path = urlsplit(url if "://" in url else f"http://{url}").path
    if path not in ("", "/"):
        raise ConfigError(
            f"bad --target URL {url!r}: give only scheme://host[:port] "
            "(each request keeps its recorded path)"
        )
    return endpoint


def skip_reason(flow: Flow) -> str | None:
    """Why a flow is not an HTTP request/response to replay at all, or None."""
    if flow.request.method.upper() == "CONNECT":
        return "CONNECT tunnels are not replayed"
    if flow.websocket or (flow.response is not None and flow.response.status_code == 101):
        return "WebSocket and other protocol upgrades are not replayed"
    return None


def check_replayable(flow: Flow) -> None:
    """Raise ReplayError when the recording does not hold the whole request."""
    reason = skip_reason(flow)
    if reason is not None:
        raise ReplayError(reason)
    body = flow.request.body
    if body.truncated:
        raise ReplayError(
            f"the request body was cut at capture ({human_size(len(body.data))} of "
            f"{human_size(body.size)} recorded); capture again with a larger --body-limit"
        )
    if flow.error is not None and flow.error.phase == Phase.CLIENT:
        raise ReplayError("the client's request was not received whole at capture")


def authority(endpoint: Endpoint) -> str:
    """``host[:port]`` for the Host header (IPv6 in brackets, IDNs in their ASCII form)."""
    host = endpoint.host if endpoint.host.isascii() else endpoint.host.encode("idna").decode()
    return format_authority(endpoint.scheme, host, endpoint.port)


def outgoing_headers(request: FlowRequest, host: str | None) -> HeaderPairs:
    """The recorded headers as they go out on replay.

    Order and case are kept; hop-by-hop fields are dropped; ``Content-Length`` is rebuilt
    from the body where the recording had a length, chunked framing or a body; ``Host``
    becomes ``host`` (at its recorded place) unless ``host`` is None.
    """
    named_by_connection = {
        token.strip().lower()
        for value in Headers(request.headers).get_all("connection")
        for token in value.split(b",")
    }
    body = request.body.data
    framed = any(
        name.lower() in (b"content-length", b"transfer-encoding") for name, _ in request.headers
    )
    out: HeaderPairs = []
    length_placed = False
    for name, value in request.headers:
        key = name.lower()
        if key in (b"content-length", b"transfer-encoding"):
            if not length_placed:
                out.append((b"Content-Length", str(len(body)).encode()))
                length_placed = True
            continue
        if key in HOP_BY_HOP or key in named_by_connection:
            continue
        if key == b"host" and host is not None:
            value = host.encode("ascii")
        out.append((name, value))
    if body and not framed:
        out.append((b"Content-Length", str(len(body)).encode()))
    if host is not None and not any(name.lower() == b"host" for name, _ in out):
        out.insert(0, (b"Host", host.encode("ascii")))
    return out


def replay_request(flow: Flow, options: ReplayOptions) -> FlowRequest:
    """The request a replay sends: the recorded one pointed at the target."""
    rec = flow.request
    target = options.target or Endpoint(rec.scheme, rec.host, rec.port)
    host = None if options.keep_host else authority(target)
    return FlowRequest(
        method=rec.method,
        scheme=target.scheme,
        host=target.host,
        port=target.port,
        path=rec.path,
        http_version="HTTP/1.1",
        headers=outgoing_headers(rec, host),
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
    _exchange(new, options, in_flight or InFlight())
    return new


class InFlight:
    """The connections replays are using right now, so that Ctrl-C can cut them short."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: set[protocol.HTTPConnection] = set()
        self.aborted = False

    def add(self, conn: protocol.HTTPConnection) -> None:
        with self._lock:
            if self.aborted:
                raise InterruptedError("replay interrupted")
            self._conns.add(conn)

    def discard(self, conn: protocol.HTTPConnection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def abort(self) -> None:
        """Shut every open connection down; threads blocked on them wake with an error."""
        with self._lock:
            self.aborted = True
            conns = list(self._conns)
        for conn in conns:
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
    digest = hashlib.sha256()
    kept = bytearray()
    size = 0
    while chunk := resp.read(_READ_SIZE):
        digest.update(chunk)
        size += len(chunk)
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return FlowBody(
        data=bytes(kept), size=size, truncated=size > len(kept), sha256=digest.hexdigest()
    )


# --- inspector replay ---------------------------------------------------------------------


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


@dataclass(slots=True)
class Tally:
    total: int = 0
    match: int = 0
    differ: int = 0
    errors: int = 0
    skipped: int = 0
    interrupted: bool = False

    @property
    def replayed(self) -> int:
        return self.match + self.differ + self.errors

    def summary(self) -> str:
        text = (
            f"replayed {self.replayed} of {self.total}: {self.match} match, "
            f"{self.differ} differ, {self.errors} errors"
        )
        if self.skipped:
            text += f", {self.skipped} skipped"
        return text + ("; interrupted" if self.interrupted else "")

    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.errors:
            return 2
        return 1 if self.differ else 0


class Reporter:
    """Prints one line per flow (and its diff), counts outcomes, shows progress on a TTY."""

    def __init__(
        self,
        tally: Tally,
        *,
        show_diff: bool,
        ignore: list[str],
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.tally = tally
        self.show_diff = show_diff
        self.ignore = ignore
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.progress = self.err.isatty()

    def report(self, outcome: Outcome) -> None:
        flow = outcome.original
        label = f"{flow.request.method} {flow.request.url}"
        if outcome.skipped is not None:
            self.tally.skipped += 1
            self._print(f"{label} -> skipped: {outcome.skipped}")
        elif outcome.refused is not None:
            self.tally.errors += 1
            self._print(f"{label} -> ERROR cannot replay: {outcome.refused}")
        else:
            assert outcome.new is not None
            self._report_replay(flow, outcome.new)
        self._show_progress()

    def _report_replay(self, original: Flow, new: Flow) -> None:
        line = flow_line(new)
        if new.error is not None:
            self.tally.errors += 1
            self._print(line)
            return
        diff = compare(original.response, new.response, self.ignore)
        if diff.status is not None:
            line += f"  (recorded {_recorded_status(original)})"
        if diff.same:
            self.tally.match += 1
        else:
            self.tally.differ += 1
            if not self.show_diff:
                line += f"  [differs: {', '.join(diff.parts)}]"
        self._print(line)
        if self.show_diff and not diff.same:
            self._print_diff(diff)

    def _print_diff(self, diff: ResponseDiff) -> None:
        for text in diff.lines():
            self._print(f"    {text}")

    def _print(self, text: str) -> None:
        if self.progress:
            self.err.write("\r\033[K")
        print(text, file=self.out, flush=True)

    def _show_progress(self) -> None:
        if self.progress:
            done = self.tally.replayed + self.tally.skipped
            self.err.write(f"\r[{done}/{self.tally.total}] replaying...")
            self.err.flush()

    def finish(self) -> None:
        if self.progress:
            self.err.write("\r\033[K")
            self.err.flush()
        print(self.tally.summary(), file=self.out, flush=True)


def _recorded_status(flow: Flow) -> str:
    if flow.response is None:
        return f"ERROR {flow.error.exc_class}" if flow.error else "no response"
    return status_text(flow.response.status_code, flow.response.reason)


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


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    if args.concurrency < 1:
        raise ConfigError(f"bad --concurrency {args.concurrency}: use 1 or more")
    if args.rate is not None and args.rate <= 0:
        raise ConfigError(f"bad --rate {args.rate}: use a number of requests per second > 0")
    if args.upstream_ca is not None and not args.upstream_ca.is_file():
        raise ConfigError(f"--upstream-ca {args.upstream_ca}: no such file")
    options = ReplayOptions(
        target=parse_target(args.target) if args.target else None,
        keep_host=args.keep_host,
        timeout=args.timeout,
        insecure=args.insecure,
        upstream_ca=args.upstream_ca,
    )
    if args.upstream_ca is not None:
        try:
            options.tls_context()
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(f"--upstream-ca {args.upstream_ca}: not a CA bundle ({e})") from None
    return options


def main(args: argparse.Namespace) -> int:
    """``inspector replay``: exit 0 all match, 1 differences, 2 errors, 130 interrupted."""
    try:
        return _main(args)
    except BrokenPipeError:
        # The reader of our output went away (`| head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    source = open_session(args.session, readonly=args.into is not None)
    try:
        ids = selected_ids(source, args.filter, skip_replays=True)
        sink = source if args.into is None else open_session(args.into, create=True)
        try:
            tally = _replay_session(source, sink, ids, options, args)
        finally:
            if sink is not source:
                sink.close()
    finally:
        source.close()
    return tally.exit_code()


def _replay_session(
    source: Store, sink: Store, ids: list[str], options: ReplayOptions, args: argparse.Namespace
) -> Tally:
    tally = Tally(total=len(ids))
    reporter = Reporter(tally, show_diff=args.diff, ignore=args.ignore_header or [])

    def flows() -> Iterator[Flow]:
        for flow_id in ids:
            flow = source.get(flow_id)
            if flow is not None:
                yield flow

    def on_outcome(outcome: Outcome) -> None:
        if outcome.new is not None:
            sink.put(outcome.new)
        reporter.report(outcome)

    finished = run_replays(
        flows(), options, concurrency=args.concurrency, rate=args.rate, on_outcome=on_outcome
    )
    tally.interrupted = not finished
    sink.flush()
    reporter.finish()
    return tally
