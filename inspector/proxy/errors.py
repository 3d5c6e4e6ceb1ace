"""Map what went wrong in an exchange to a FlowError and the answer the client gets."""

from __future__ import annotations

import os
import ssl
import time

from inspector.flow import FlowError, Phase

GATEWAY_TIMEOUT = 504
BAD_GATEWAY = 502


class FlowKilled(Exception):
    """The user killed a held flow in the UI."""

    def __init__(self, message: str = "killed by the user") -> None:
        super().__init__(message)


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


class UpstreamError(Exception):
    """An exception from the upstream side, tagged with the phase it happened in."""

    def __init__(self, exc: BaseException, phase: Phase, where: str) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.phase = phase
        self.where = where  # "host:port" of the upstream, for the client's error body


def exc_class(exc: BaseException) -> str:
    return type(exc).__name__


def exc_message(exc: BaseException) -> str:
    """str(exc), with a fallback for exceptions whose str() is empty (TimeoutError()).

    An OS error with an errno reads the same on every event loop: asyncio says
    "Connect call failed ('127.0.0.1', 9)" where uvloop and the OS say "Connection refused".
    """
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and (exc.errno or 0) > 0:
        return f"[Errno {exc.errno}] {os.strerror(exc.errno)}"
    text = str(exc)
    if isinstance(exc, ssl.SSLError):
        return text + _tls_hint(exc)
    if text:
        return text
    if isinstance(exc, TimeoutError):
        return "timed out"
    return repr(exc)


# OpenSSL verify codes that mean "no trusted CA vouches for this certificate".
_UNTRUSTED_CODES = frozenset({2, 18, 19, 20, 21})


def _tls_hint(exc: ssl.SSLError) -> str:
    """What to do about the TLS failures users meet most, or ""."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        if code in _UNTRUSTED_CODES:
            return (
                " (the upstream's certificate is not signed by a CA this proxy trusts: "
                "add its CA with --upstream-ca FILE, or skip verification with --insecure)"
            )
        if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return " (the upstream's certificate does not name the host that was asked for)"
        if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return " (the upstream's certificate has expired)"
        return ""
    if getattr(exc, "reason", None) == "WRONG_VERSION_NUMBER":
        return " (the upstream did not answer with TLS: is it plain HTTP on that port?)"
    return ""


def flow_error(exc: BaseException, phase: Phase) -> FlowError:
    return FlowError(exc_class(exc), exc_message(exc), phase, time.time())


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
