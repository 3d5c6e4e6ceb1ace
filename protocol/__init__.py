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
from protocol.client import HTTP_PORT, HTTPS_PORT, HTTPConnection
from protocol.errors import (
    BadStatusLine,
    CannotSendHeader,
    CannotSendRequest,
    HeaderBlockTooLarge,
    HTTPException,
    ImproperConnectionState,
    IncompleteRead,
    InvalidChunk,
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
from protocol.https import HTTPSConnection

# http.client's private names for its caps (code reads them), and parse_headers,
# which http.client has outside its __all__ too.
from protocol.limits import MAX_HEADERS as _MAXHEADERS  # noqa: F401
from protocol.limits import MAX_LINE as _MAXLINE  # noqa: F401
from protocol.response import (
    HTTPMessage,
    HTTPResponse,
    parse_headers,  # noqa: F401
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
    "HeaderBlockTooLarge",
    "ImproperConnectionState",
    "IncompleteRead",
    "InvalidChunk",
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
