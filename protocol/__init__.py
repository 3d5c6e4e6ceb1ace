"""protocol: the HTTP/1.1 client core, with the public names of Python 3.11's ``http.client``.

Code written for ``http.client`` runs unchanged with ``import protocol as client``.
"""

from protocol import status as _status
from protocol._abnf import is_token
from protocol.aio import AsyncHTTPConnection
from protocol.authority import (
    DEFAULT_PORTS,
    bracket,
    default_port,
    format_authority,
    host_port,
    split_authority,
)
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
    "DEFAULT_PORTS",
    "bracket",
    "default_port",
    "format_authority",
    "host_port",
    "split_authority",
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
    "is_token",
    "responses",
    *_status.CONSTANT_NAMES,
]
