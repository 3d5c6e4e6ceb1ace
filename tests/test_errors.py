"""protocol.errors keeps http.client's exception tree and constructors, plus status hints."""

from __future__ import annotations

import http.client
import pickle

import pytest

from protocol import errors

HTTP_CLIENT_NAMES = [
    "HTTPException",
    "NotConnected",
    "InvalidURL",
    "UnknownProtocol",
    "UnknownTransferEncoding",
    "UnimplementedFileMode",
    "IncompleteRead",
    "ImproperConnectionState",
    "CannotSendRequest",
    "CannotSendHeader",
    "ResponseNotReady",
    "BadStatusLine",
    "LineTooLong",
    "RemoteDisconnected",
]


def _ours(name: str) -> type:
    return getattr(errors, name)


@pytest.mark.parametrize("name", HTTP_CLIENT_NAMES)
def test_same_bases_as_http_client(name: str) -> None:
    theirs = getattr(http.client, name)
    base_names = [b.__name__ for b in theirs.__bases__]
    assert [b.__name__ for b in _ours(name).__bases__] == base_names
    for base in theirs.__mro__:
        if base.__module__ == "http.client":
            assert issubclass(_ours(name), _ours(base.__name__))
        elif base is not object:
            assert issubclass(_ours(name), base)


def test_everything_is_an_http_exception_with_a_status_hint() -> None:
    for name in [*HTTP_CLIENT_NAMES, "RemoteProtocolError", "LocalProtocolError"]:
        cls = _ours(name)
        assert issubclass(cls, errors.HTTPException)
        assert isinstance(cls.status_hint, int)
    assert errors.error is errors.HTTPException


def test_incomplete_read_matches_http_client() -> None:
    for args in [(b"abc",), (b"abc", 7), (b"",)]:
        ours, theirs = errors.IncompleteRead(*args), http.client.IncompleteRead(*args)
        assert repr(ours) == repr(theirs)
        assert str(ours) == str(theirs).replace("http.client.", "")
        assert ours.args == theirs.args and ours.partial == theirs.partial
        assert ours.expected == theirs.expected


def test_bad_status_line_matches_http_client() -> None:
    for line in ["garbage", ""]:
        ours, theirs = errors.BadStatusLine(line), http.client.BadStatusLine(line)
        assert (ours.line, ours.args, str(ours)) == (theirs.line, theirs.args, str(theirs))


def test_remote_disconnected_matches_http_client() -> None:
    ours = errors.RemoteDisconnected("Remote end closed connection without response")
    theirs = http.client.RemoteDisconnected("Remote end closed connection without response")
    assert isinstance(ours, ConnectionResetError) and isinstance(ours, errors.BadStatusLine)
    assert isinstance(ours, OSError)
    assert ours.args == theirs.args and str(ours) == str(theirs) and ours.line == theirs.line


def test_line_too_long_matches_http_client() -> None:
    for kind in ["header line", "status line", "chunk size"]:
        assert str(errors.LineTooLong(kind)) == str(http.client.LineTooLong(kind))


def test_line_too_long_hints_and_custom_limit() -> None:
    assert errors.LineTooLong("request line").status_hint == 414
    assert errors.LineTooLong("header line").status_hint == 431
    assert errors.LineTooLong("status line").status_hint == 400
    err = errors.LineTooLong("request line", 8000)
    assert str(err) == "got more than 8000 bytes when reading request line"
    assert (err.line_type, err.limit) == ("request line", 8000)


def test_unknown_protocol_keeps_the_version() -> None:
    err = errors.UnknownProtocol("HTTP/2.0")
    assert err.version == "HTTP/2.0" and err.args == ("HTTP/2.0",)
    assert err.status_hint == 505


def test_status_hint_defaults() -> None:
    assert errors.HTTPException().status_hint == 400
    assert errors.UnknownTransferEncoding("x").status_hint == 501
    assert errors.RemoteProtocolError("bad").status_hint == 400
    assert errors.RemoteProtocolError("big", status_hint=431).status_hint == 431


def test_local_protocol_error_is_a_value_error() -> None:
    err = errors.LocalProtocolError("CR in header value")
    assert isinstance(err, ValueError) and isinstance(err, errors.HTTPException)
    with pytest.raises(ValueError, match="CR in header"):
        raise err


def test_remote_protocol_error_is_not_a_value_error() -> None:
    assert not issubclass(errors.RemoteProtocolError, ValueError)


def test_quote_truncates_long_data() -> None:
    assert errors.quote(b"abc") == "b'abc'"
    long = errors.quote(b"x" * 500, 10)
    assert long == "b'xxxxxxxxxx'... (500 bytes)"
    assert errors.quote(bytearray(b"ab")) == "b'ab'"


def test_errors_pickle_round_trip() -> None:
    for err in [
        errors.IncompleteRead(b"ab", 3),
        errors.BadStatusLine("x"),
        errors.UnknownProtocol("HTTP/3"),
        errors.LocalProtocolError("no"),
    ]:
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and copy.args == err.args
