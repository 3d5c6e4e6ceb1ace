"""What the proxy answers when an exchange fails, and the exceptions that say why."""

from __future__ import annotations

import asyncio

from inspector.failures import exc_class, exc_message
from inspector.flow import Phase
from protocol.aio import stream_write

GATEWAY_TIMEOUT = 504
BAD_GATEWAY = 502


class ProxyShutdown(Exception):
    """The proxy stopped (SIGINT/SIGTERM) before an exchange could finish."""

    def __init__(self) -> None:
        super().__init__("the proxy shut down before the exchange finished")


class ClientError(Exception):
    """The client's request cannot be served; ``status`` and the message go back to it."""

    def __init__(self, status: int, message: str, *, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class ClientGone(Exception):
    """The client closed or broke its connection in the middle of an exchange."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc_message(exc))
        self.exc = exc


def write_to_client(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write to the client's socket; ClientGone when it is no longer there."""
    try:
        stream_write(writer, data, "the client")
    except OSError as e:
        raise ClientGone(e) from e


async def drain_client(writer: asyncio.StreamWriter) -> None:
    """Wait for the client to take what was written; ClientGone when it went away."""
    try:
        await writer.drain()
    except OSError as e:
        raise ClientGone(e) from e


class UpstreamError(Exception):
    """An exception from the upstream side, tagged with the phase it happened in."""

    def __init__(self, exc: BaseException, phase: Phase, where: str) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.phase = phase
        self.where = where  # "host:port" of the upstream, for the client's error body


def upstream_status(exc: BaseException) -> int:
    """504 for a timeout, 502 for everything else the upstream did."""
    return GATEWAY_TIMEOUT if isinstance(exc, TimeoutError) else BAD_GATEWAY


def upstream_error_body(err: UpstreamError) -> bytes:
    text = (
        f"inspector: upstream {err.where} failed during {err.phase.value}: "
        f"{exc_class(err.exc)}: {exc_message(err.exc)}\n"
    )
    return text.encode("utf-8", "replace")


def client_status(exc: BaseException) -> int:
    """The status a malformed client request gets: the core's hint, else 400."""
    hint = getattr(exc, "status_hint", 400)
    return hint if isinstance(hint, int) and 400 <= hint < 600 else 400
