"""protocol.status: constants for every seed and registry code, phrases, describe()."""

from __future__ import annotations

import http

import pytest

from protocol import status
from protocol.status import StatusInfo, describe, responses

# Every "NAME CODE" row of the seed document's constant table (Python 2's httplib docs,
# section 11.6), copied here so the test needs nothing outside the repository.
SEED_TABLE = """
CONTINUE 100 SWITCHING_PROTOCOLS 101 PROCESSING 102
OK 200 CREATED 201 ACCEPTED 202 NON_AUTHORITATIVE_INFORMATION 203 NO_CONTENT 204
RESET_CONTENT 205 PARTIAL_CONTENT 206 MULTI_STATUS 207 IM_USED 226
MULTIPLE_CHOICES 300 MOVED_PERMANENTLY 301 FOUND 302 SEE_OTHER 303 NOT_MODIFIED 304
USE_PROXY 305 TEMPORARY_REDIRECT 307
BAD_REQUEST 400 UNAUTHORIZED 401 PAYMENT_REQUIRED 402 FORBIDDEN 403 NOT_FOUND 404
METHOD_NOT_ALLOWED 405 NOT_ACCEPTABLE 406 PROXY_AUTHENTICATION_REQUIRED 407
REQUEST_TIMEOUT 408 CONFLICT 409 GONE 410 LENGTH_REQUIRED 411 PRECONDITION_FAILED 412
REQUEST_ENTITY_TOO_LARGE 413 REQUEST_URI_TOO_LONG 414 UNSUPPORTED_MEDIA_TYPE 415
REQUESTED_RANGE_NOT_SATISFIABLE 416 EXPECTATION_FAILED 417 UNPROCESSABLE_ENTITY 422
LOCKED 423 FAILED_DEPENDENCY 424 UPGRADE_REQUIRED 426
INTERNAL_SERVER_ERROR 500 NOT_IMPLEMENTED 501 BAD_GATEWAY 502 SERVICE_UNAVAILABLE 503
GATEWAY_TIMEOUT 504 HTTP_VERSION_NOT_SUPPORTED 505 INSUFFICIENT_STORAGE 507 NOT_EXTENDED 510
"""


def _seed_constants() -> list[tuple[str, int]]:
    words = SEED_TABLE.split()
    return [(name, int(code)) for name, code in zip(words[::2], words[1::2], strict=True)]


def test_every_seed_constant_exists_with_its_value() -> None:
    rows = _seed_constants()
    assert len(rows) == 49
    for name, code in rows:
        assert getattr(status, name) == code, name


REGISTRY = {
    103: ("EARLY_HINTS", "Early Hints", "RFC 8297, Section 2"),
    208: ("ALREADY_REPORTED", "Already Reported", "RFC 5842, Section 7.1"),
    306: ("UNUSED", "(Unused)", "RFC 9110, Section 15.4.7"),
    308: ("PERMANENT_REDIRECT", "Permanent Redirect", "RFC 9110, Section 15.4.9"),
    404: ("NOT_FOUND", "Not Found", "RFC 9110, Section 15.5.5"),
    413: ("CONTENT_TOO_LARGE", "Content Too Large", "RFC 9110, Section 15.5.14"),
    414: ("URI_TOO_LONG", "URI Too Long", "RFC 9110, Section 15.5.15"),
    416: ("RANGE_NOT_SATISFIABLE", "Range Not Satisfiable", "RFC 9110, Section 15.5.17"),
    418: ("IM_A_TEAPOT", "I'm a teapot", "RFC 9110, Section 15.5.19"),
    421: ("MISDIRECTED_REQUEST", "Misdirected Request", "RFC 9110, Section 15.5.20"),
    422: ("UNPROCESSABLE_CONTENT", "Unprocessable Content", "RFC 9110, Section 15.5.21"),
    423: ("LOCKED", "Locked", "RFC 4918, Section 11.3"),
    425: ("TOO_EARLY", "Too Early", "RFC 8470, Section 5.2"),
    428: ("PRECONDITION_REQUIRED", "Precondition Required", "RFC 6585, Section 3"),
    429: ("TOO_MANY_REQUESTS", "Too Many Requests", "RFC 6585, Section 4"),
    431: (
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
        "Request Header Fields Too Large",
        "RFC 6585, Section 5",
    ),
    451: (
        "UNAVAILABLE_FOR_LEGAL_REASONS",
        "Unavailable For Legal Reasons",
        "RFC 7725, Section 3",
    ),
    507: ("INSUFFICIENT_STORAGE", "Insufficient Storage", "RFC 4918, Section 11.5"),
    508: ("LOOP_DETECTED", "Loop Detected", "RFC 5842, Section 7.2"),
    510: ("NOT_EXTENDED", "Not Extended", "RFC 2774, Section 7"),
    511: (
        "NETWORK_AUTHENTICATION_REQUIRED",
        "Network Authentication Required",
        "RFC 6585, Section 6",
    ),
}


@pytest.mark.parametrize("code", sorted(REGISTRY))
def test_registry_codes(code: int) -> None:
    name, phrase, reference = REGISTRY[code]
    assert getattr(status, name) == code
    assert responses[code] == phrase
    assert describe(code) == StatusInfo(code, name, phrase, reference)


def test_old_names_are_aliases_of_the_same_integer() -> None:
    assert status.REQUEST_ENTITY_TOO_LARGE == status.CONTENT_TOO_LARGE == 413
    assert status.REQUEST_URI_TOO_LONG == status.URI_TOO_LONG == 414
    assert status.REQUESTED_RANGE_NOT_SATISFIABLE == status.RANGE_NOT_SATISFIABLE == 416
    assert status.UNPROCESSABLE_ENTITY == status.UNPROCESSABLE_CONTENT == 422
    assert describe(status.REQUEST_ENTITY_TOO_LARGE).name == "CONTENT_TOO_LARGE"


def test_constants_are_plain_ints() -> None:
    for name in status.CONSTANT_NAMES:
        assert type(getattr(status, name)) is int
    assert set(status.CONSTANT_NAMES) <= set(status.__all__)


def test_every_constant_has_a_phrase_and_describes_to_its_current_name() -> None:
    for name in status.CONSTANT_NAMES:
        code = getattr(status, name)
        info = describe(code)
        assert responses[code] == info.phrase
        assert getattr(status, info.name) == code
        assert info.reference and info.reference.startswith("RFC ")


def test_codes_agree_with_the_standard_library() -> None:
    """Every code the stdlib knows is here too, under a name the stdlib or RFC 9110 uses."""
    for member in http.HTTPStatus:
        assert member.value in responses, member
        assert hasattr(status, member.name) or describe(member.value).name


@pytest.mark.parametrize(
    ("code", "name", "phrase", "reference"),
    [
        (199, "UNKNOWN_1XX", "Unknown 1xx", "RFC 9110, Section 15.2"),
        (299, "UNKNOWN_2XX", "Unknown 2xx", "RFC 9110, Section 15.3"),
        (399, "UNKNOWN_3XX", "Unknown 3xx", "RFC 9110, Section 15.4"),
        (499, "UNKNOWN_4XX", "Unknown 4xx", "RFC 9110, Section 15.5"),
        (599, "UNKNOWN_5XX", "Unknown 5xx", "RFC 9110, Section 15.6"),
        (509, "UNKNOWN_5XX", "Unknown 5xx", "RFC 9110, Section 15.6"),
    ],
)
def test_unknown_codes_get_their_class(code: int, name: str, phrase: str, reference: str) -> None:
    assert describe(code) == StatusInfo(code, name, phrase, reference)


@pytest.mark.parametrize("code", [0, 99, 600, 999, -1])
def test_codes_outside_the_classes_are_unknown(code: int) -> None:
    assert describe(code) == StatusInfo(code, "UNKNOWN", "Unknown", None)


def test_status_info_is_frozen() -> None:
    info = describe(200)
    with pytest.raises(AttributeError):
        info.code = 201  # type: ignore[misc]
