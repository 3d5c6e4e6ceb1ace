"""How exceptions read in a flow's error (inspector/failures.py), shared by proxy and replay."""

from __future__ import annotations

import errno
import os
import socket

from inspector.failures import exc_class, exc_message, flow_error
from inspector.flow import Phase


def test_unresolvable_host_says_so() -> None:
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert exc_message(exc) == (
        f"[Errno {socket.EAI_NONAME}] Name or service not known "
        "(the host name could not be resolved: check it, or the DNS settings)"
    )
    assert exc_class(exc) == "gaierror"


def test_an_errno_reads_the_same_whatever_the_loop_wrote() -> None:
    refused = errno.ECONNREFUSED
    asyncio_style = ConnectionRefusedError(refused, "Connect call failed ('127.0.0.1', 9)")
    assert exc_message(asyncio_style) == f"[Errno {refused}] {os.strerror(refused)}"


def test_empty_messages_get_a_readable_one() -> None:
    assert exc_message(TimeoutError()) == "timed out"
    assert exc_message(KeyError()) == "KeyError()"
    # Transports raise these bare; the reader still learns what happened.
    reset, pipe = errno.ECONNRESET, errno.EPIPE
    assert exc_message(ConnectionResetError()) == f"[Errno {reset}] {os.strerror(reset)}"
    assert exc_message(BrokenPipeError()) == f"[Errno {pipe}] {os.strerror(pipe)}"


def test_flow_error_carries_class_message_and_phase() -> None:
    err = flow_error(ConnectionResetError(errno.ECONNRESET, "reset"), Phase.BODY)
    assert (err.exc_class, err.message, err.phase) == (
        "ConnectionResetError",
        f"[Errno {errno.ECONNRESET}] {os.strerror(errno.ECONNRESET)}",
        Phase.BODY,
    )
    assert err.timestamp > 0
