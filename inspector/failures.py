"""How an exception reads in a flow's error: its class, and a message that says what to do.

Shared by the proxy and replay, so the same failure reads the same in both.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time

from inspector.flow import FlowError, Phase


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
    if isinstance(exc, socket.gaierror):
        return f"{text} (the host name could not be resolved: check it, or the DNS settings)"
    if text:
        return text
    if isinstance(exc, TimeoutError):
        return "timed out"
    for kind, number in _ERRNO_OF.items():
        if isinstance(exc, kind):  # raised bare, as transports do: say what it means
            return f"[Errno {number}] {os.strerror(number)}"
    return repr(exc)


_ERRNO_OF = {
    ConnectionResetError: errno.ECONNRESET,
    ConnectionAbortedError: errno.ECONNABORTED,
    ConnectionRefusedError: errno.ECONNREFUSED,
    BrokenPipeError: errno.EPIPE,
}


# OpenSSL verify codes that mean "no trusted CA vouches for this certificate".
_UNTRUSTED_CODES = frozenset({2, 18, 19, 20, 21})


def _tls_hint(exc: ssl.SSLError) -> str:
    """What to do about the TLS failures users meet most, or ""."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        if code in _UNTRUSTED_CODES:
            return (
                " (the server's certificate is not signed by a CA trusted here: "
                "add its CA with --upstream-ca FILE, or skip verification with --insecure)"
            )
        if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return " (the server's certificate does not name the host that was asked for)"
        if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return " (the server's certificate has expired)"
        return ""
    if getattr(exc, "reason", None) == "WRONG_VERSION_NUMBER":
        return " (the server did not answer with TLS: is it plain HTTP on that port?)"
    return ""


def flow_error(exc: BaseException, phase: Phase) -> FlowError:
    return FlowError(exc_class(exc), exc_message(exc), phase, time.time())
