"""protocol: the HTTP/1.1 client core, with the public names of Python 3.11's ``http.client``.

Code written for ``http.client`` runs unchanged with ``import protocol as client``.
"""

from protocol import status as _status
from protocol.aio import AsyncHTTPConnection
from protocol.client import (
    HTTP_PORT,
    HTTPS_PORT,
    HTTPConnection,
    HTTPMessage,
    HTTPResponse,
    HTTPSConnection,
)
from protocol.errors import (
    BadStatusLine,
    CannotSendHeader,
    CannotSendRequest,
    HTTPException,
    ImproperConnectionState,
    IncompleteRead,
    InvalidURL,
    LineTooLong,
    LocalProtocolError,
    NotConnected,
    RemoteDisconnected,
    RemoteProtocolError,
    ResponseNotReady,
    UnimplementedFileMode,
    UnknownProtocol,
    UnknownTransferEncoding,
    error,
)
from protocol.status import *  # noqa: F403  (one constant per status code, and ``responses``)
from protocol.status import responses

__all__ = [
    "AsyncHTTPConnection",
    "HTTPS_PORT",
    "HTTP_PORT",
    "HTTPConnection",
    "HTTPMessage",
    "HTTPResponse",
    "HTTPSConnection",
    "BadStatusLine",
    "CannotSendHeader",
    "CannotSendRequest",
    "HTTPException",
    "ImproperConnectionState",
    "IncompleteRead",
    "InvalidURL",
    "LineTooLong",
    "LocalProtocolError",
    "NotConnected",
    "RemoteDisconnected",
    "RemoteProtocolError",
    "ResponseNotReady",
    "UnimplementedFileMode",
    "UnknownProtocol",
    "UnknownTransferEncoding",
    "error",
    "responses",
    *_status.CONSTANT_NAMES,
]
