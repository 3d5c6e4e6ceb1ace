"""Replaying a flow recorded over HTTP/2 over HTTP/2 again, on ``protocol.http2``.

One connection per replay, in the replay thread's own event loop: TLS offering ALPN
``h2`` for https (a server that picks anything else is an error that says so), prior
knowledge (h2c) for http. The request goes out as ``protocol.http2_fields.to_http2``
makes it (lower-case names, no connection-specific fields, ``Host`` as ``:authority``);
``TE: trailers``, which gRPC needs, is kept (``trailers_asked``).
"""

from __future__ import annotations

import asyncio
import ssl
import time

from inspector.config import Endpoint
from inspector.failures import flow_error
from inspector.flow import Flow, FlowRequest, FlowResponse, Phase
from inspector.replay.body import BodyRecorder
from inspector.replay.request import authority as endpoint_authority
from protocol.errors import UnknownProtocol
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection
from protocol.http2_fields import to_http2


class Cancel:
    """Cuts the HTTP/2 replay running in this task short from another thread (Ctrl-C)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()

    def cancel(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)


def request_fields(flow: Flow) -> tuple[bytes, Headers]:
    """The ``:authority`` and the regular fields a replay sends for ``flow.request``."""
    req = flow.request
    headers = Headers(req.headers)
    authority = headers.get(b"host") or request_authority(req).encode("ascii")
    return authority, to_http2(headers)


def trailers_asked(req: FlowRequest) -> bool:
    """Whether the recorded request said ``TE: trailers`` (gRPC servers insist on it)."""
    return any(
        name.lower() == b"te" and value.strip().lower() == b"trailers"
        for name, value in req.headers
    )


def request_authority(req: FlowRequest) -> str:
    """``host[:port]`` of the request's target (IDNs in their ASCII form)."""
    return endpoint_authority(Endpoint(req.scheme, req.host, req.port))


class H2Replay:
    """One replay over HTTP/2: ``await run()`` leaves the response or the error on the flow."""

    def __init__(
        self, flow: Flow, tls: ssl.SSLContext | None, timeout: float, body: BodyRecorder
    ) -> None:
        req = flow.request
        self.flow = flow
        self.phase = Phase.CONNECT
        self.body = body
        self.conn = AsyncHTTP2Connection(
            req.host, req.port, ssl=tls, server_hostname=req.host,
            connect_timeout=timeout, read_timeout=timeout,
        )  # fmt: skip

    async def run(self) -> None:
        timings = self.flow.timings
        try:
            timings.connect_start = time.time()
            await self._connect()
            timings.connect_end = time.time()
            if self.conn.ssl is not None:
                timings.tls_end = timings.connect_end
            await self._exchange()
        except asyncio.CancelledError:
            self.flow.error = flow_error(InterruptedError("replay interrupted"), self.phase)
        except Exception as e:
            phase = self.phase
            if phase == Phase.CONNECT and isinstance(e, ssl.SSLError):
                phase = Phase.TLS
            self.flow.error = flow_error(e, phase)
        finally:
            await self.conn.close()
            timings.end = time.time()

    async def _connect(self) -> None:
        try:
            await self.conn.connect()
        except UnknownProtocol:
            self.phase = Phase.TLS
            raise UnknownProtocol(
                f"{request_authority(self.flow.request)} did not pick HTTP/2 (ALPN h2) in the TLS "
                "handshake; a flow recorded over HTTP/2 is replayed over HTTP/2"
            ) from None
        await self.conn.settled()  # an HTTP/1.1-only server refuses prior knowledge here

    async def _exchange(self) -> None:
        req, timings = self.flow.request, self.flow.timings
        authority, fields = request_fields(self.flow)
        self.phase = Phase.SEND
        stream = await self.conn.open_stream(
            req.method.encode("ascii"), req.scheme.encode("ascii"), authority,
            req.path.encode("latin-1"), fields, end_stream=not req.body.data,
        )  # fmt: skip
        if req.body.data:
            await stream.send_data(req.body.data)
            await stream.send_end()
        timings.request_sent = time.time()
        self.phase = Phase.HEADERS
        head = await stream.receive_response()
        timings.response_start = time.time()
        response = FlowResponse(
            head.status_code, "", "HTTP/2", list(head.headers.raw), timestamp=time.time()
        )
        self.flow.response = response
        self.phase = Phase.BODY
        async for chunk in stream.iter_body():
            self.body.add(chunk)
        response.body = self.body.body()
        response.trailers = list(stream.trailers.raw)
