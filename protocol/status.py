"""HTTP status codes: one integer constant per code, reason phrases, and ``describe()``.

This is the one status-name table of the product. Names and phrases follow the
current IANA registry (RFC 9110 and the RFCs it points to); names the 2.x
``httplib`` used before RFC 9110 renamed a code stay as aliases of the same integer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StatusInfo:
    code: int
    name: str  # the constant's name, e.g. "NOT_FOUND"
    phrase: str  # the reason phrase, e.g. "Not Found"
    reference: str | None  # where it is defined, e.g. "RFC 9110, Section 15.5.5"


def _rfc9110(section: str) -> str:
    return f"RFC 9110, Section 15.{section}"


# code, current name, phrase, reference, older names kept as aliases
_TABLE: tuple[tuple[int, str, str, str, tuple[str, ...]], ...] = (
    (100, "CONTINUE", "Continue", _rfc9110("2.1"), ()),
    (101, "SWITCHING_PROTOCOLS", "Switching Protocols", _rfc9110("2.2"), ()),
    (102, "PROCESSING", "Processing", "RFC 2518, Section 10.1", ()),
    (103, "EARLY_HINTS", "Early Hints", "RFC 8297, Section 2", ()),
    (200, "OK", "OK", _rfc9110("3.1"), ()),
    (201, "CREATED", "Created", _rfc9110("3.2"), ()),
    (202, "ACCEPTED", "Accepted", _rfc9110("3.3"), ()),
    (203, "NON_AUTHORITATIVE_INFORMATION", "Non-Authoritative Information", _rfc9110("3.4"), ()),
    (204, "NO_CONTENT", "No Content", _rfc9110("3.5"), ()),
    (205, "RESET_CONTENT", "Reset Content", _rfc9110("3.6"), ()),
    (206, "PARTIAL_CONTENT", "Partial Content", _rfc9110("3.7"), ()),
    (207, "MULTI_STATUS", "Multi-Status", "RFC 4918, Section 11.1", ()),
    (208, "ALREADY_REPORTED", "Already Reported", "RFC 5842, Section 7.1", ()),
    (226, "IM_USED", "IM Used", "RFC 3229, Section 10.4.1", ()),
    (300, "MULTIPLE_CHOICES", "Multiple Choices", _rfc9110("4.1"), ()),
    (301, "MOVED_PERMANENTLY", "Moved Permanently", _rfc9110("4.2"), ()),
    (302, "FOUND", "Found", _rfc9110("4.3"), ()),
    (303, "SEE_OTHER", "See Other", _rfc9110("4.4"), ()),
    (304, "NOT_MODIFIED", "Not Modified", _rfc9110("4.5"), ()),
    (305, "USE_PROXY", "Use Proxy", _rfc9110("4.6"), ()),
    (306, "UNUSED", "(Unused)", _rfc9110("4.7"), ()),
    (307, "TEMPORARY_REDIRECT", "Temporary Redirect", _rfc9110("4.8"), ()),
    (308, "PERMANENT_REDIRECT", "Permanent Redirect", _rfc9110("4.9"), ()),
    (400, "BAD_REQUEST", "Bad Request", _rfc9110("5.1"), ()),
    (401, "UNAUTHORIZED", "Unauthorized", _rfc9110("5.2"), ()),
    (402, "PAYMENT_REQUIRED", "Payment Required", _rfc9110("5.3"), ()),
    (403, "FORBIDDEN", "Forbidden", _rfc9110("5.4"), ()),
    (404, "NOT_FOUND", "Not Found", _rfc9110("5.5"), ()),
    (405, "METHOD_NOT_ALLOWED", "Method Not Allowed", _rfc9110("5.6"), ()),
    (406, "NOT_ACCEPTABLE", "Not Acceptable", _rfc9110("5.7"), ()),
    (
        407,
        "PROXY_AUTHENTICATION_REQUIRED",
        "Proxy Authentication Required",
        _rfc9110("5.8"),
        (),
    ),
    (408, "REQUEST_TIMEOUT", "Request Timeout", _rfc9110("5.9"), ()),
    (409, "CONFLICT", "Conflict", _rfc9110("5.10"), ()),
    (410, "GONE", "Gone", _rfc9110("5.11"), ()),
    (411, "LENGTH_REQUIRED", "Length Required", _rfc9110("5.12"), ()),
    (412, "PRECONDITION_FAILED", "Precondition Failed", _rfc9110("5.13"), ()),
    (
        413,
        "CONTENT_TOO_LARGE",
        "Content Too Large",
        _rfc9110("5.14"),
        ("REQUEST_ENTITY_TOO_LARGE",),
    ),
    (414, "URI_TOO_LONG", "URI Too Long", _rfc9110("5.15"), ("REQUEST_URI_TOO_LONG",)),
    (415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type", _rfc9110("5.16"), ()),
    (
        416,
        "RANGE_NOT_SATISFIABLE",
        "Range Not Satisfiable",
        _rfc9110("5.17"),
        ("REQUESTED_RANGE_NOT_SATISFIABLE",),
    ),
    (417, "EXPECTATION_FAILED", "Expectation Failed", _rfc9110("5.18"), ()),
    # RFC 9110 keeps 418 reserved ("(Unused)") because of RFC 2324's joke; clients see it.
    (418, "IM_A_TEAPOT", "I'm a teapot", _rfc9110("5.19"), ()),
    (421, "MISDIRECTED_REQUEST", "Misdirected Request", _rfc9110("5.20"), ()),
    (
        422,
        "UNPROCESSABLE_CONTENT",
        "Unprocessable Content",
        _rfc9110("5.21"),
        ("UNPROCESSABLE_ENTITY",),
    ),
    (423, "LOCKED", "Locked", "RFC 4918, Section 11.3", ()),
    (424, "FAILED_DEPENDENCY", "Failed Dependency", "RFC 4918, Section 11.4", ()),
    (425, "TOO_EARLY", "Too Early", "RFC 8470, Section 5.2", ()),
    (426, "UPGRADE_REQUIRED", "Upgrade Required", _rfc9110("5.22"), ()),
    (428, "PRECONDITION_REQUIRED", "Precondition Required", "RFC 6585, Section 3", ()),
    (429, "TOO_MANY_REQUESTS", "Too Many Requests", "RFC 6585, Section 4", ()),
    (
        431,
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
        "Request Header Fields Too Large",
        "RFC 6585, Section 5",
        (),
    ),
    (
        451,
        "UNAVAILABLE_FOR_LEGAL_REASONS",
        "Unavailable For Legal Reasons",
        "RFC 7725, Section 3",
        (),
    ),
    (500, "INTERNAL_SERVER_ERROR", "Internal Server Error", _rfc9110("6.1"), ()),
    (501, "NOT_IMPLEMENTED", "Not Implemented", _rfc9110("6.2"), ()),
    (502, "BAD_GATEWAY", "Bad Gateway", _rfc9110("6.3"), ()),
    (503, "SERVICE_UNAVAILABLE", "Service Unavailable", _rfc9110("6.4"), ()),
    (504, "GATEWAY_TIMEOUT", "Gateway Timeout", _rfc9110("6.5"), ()),
    (505, "HTTP_VERSION_NOT_SUPPORTED", "HTTP Version Not Supported", _rfc9110("6.6"), ()),
    (506, "VARIANT_ALSO_NEGOTIATES", "Variant Also Negotiates", "RFC 2295, Section 8.1", ()),
    (507, "INSUFFICIENT_STORAGE", "Insufficient Storage", "RFC 4918, Section 11.5", ()),
    (508, "LOOP_DETECTED", "Loop Detected", "RFC 5842, Section 7.2", ()),
    (510, "NOT_EXTENDED", "Not Extended", "RFC 2774, Section 7", ()),
    (
        511,
        "NETWORK_AUTHENTICATION_REQUIRED",
        "Network Authentication Required",
        "RFC 6585, Section 6",
        (),
    ),
)

CONTINUE = 100
SWITCHING_PROTOCOLS = 101
PROCESSING = 102
EARLY_HINTS = 103
OK = 200
CREATED = 201
ACCEPTED = 202
NON_AUTHORITATIVE_INFORMATION = 203
NO_CONTENT = 204
RESET_CONTENT = 205
PARTIAL_CONTENT = 206
MULTI_STATUS = 207
ALREADY_REPORTED = 208
IM_USED = 226
MULTIPLE_CHOICES = 300
MOVED_PERMANENTLY = 301
FOUND = 302
SEE_OTHER = 303
NOT_MODIFIED = 304
USE_PROXY = 305
UNUSED = 306
TEMPORARY_REDIRECT = 307
PERMANENT_REDIRECT = 308
BAD_REQUEST = 400
UNAUTHORIZED = 401
PAYMENT_REQUIRED = 402
FORBIDDEN = 403
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
NOT_ACCEPTABLE = 406
PROXY_AUTHENTICATION_REQUIRED = 407
REQUEST_TIMEOUT = 408
CONFLICT = 409
GONE = 410
LENGTH_REQUIRED = 411
PRECONDITION_FAILED = 412
CONTENT_TOO_LARGE = REQUEST_ENTITY_TOO_LARGE = 413
URI_TOO_LONG = REQUEST_URI_TOO_LONG = 414
UNSUPPORTED_MEDIA_TYPE = 415
RANGE_NOT_SATISFIABLE = REQUESTED_RANGE_NOT_SATISFIABLE = 416
EXPECTATION_FAILED = 417
IM_A_TEAPOT = 418
MISDIRECTED_REQUEST = 421
UNPROCESSABLE_CONTENT = UNPROCESSABLE_ENTITY = 422
LOCKED = 423
FAILED_DEPENDENCY = 424
TOO_EARLY = 425
UPGRADE_REQUIRED = 426
PRECONDITION_REQUIRED = 428
TOO_MANY_REQUESTS = 429
REQUEST_HEADER_FIELDS_TOO_LARGE = 431
UNAVAILABLE_FOR_LEGAL_REASONS = 451
INTERNAL_SERVER_ERROR = 500
NOT_IMPLEMENTED = 501
BAD_GATEWAY = 502
SERVICE_UNAVAILABLE = 503
GATEWAY_TIMEOUT = 504
HTTP_VERSION_NOT_SUPPORTED = 505
VARIANT_ALSO_NEGOTIATES = 506
INSUFFICIENT_STORAGE = 507
LOOP_DETECTED = 508
NOT_EXTENDED = 510
NETWORK_AUTHENTICATION_REQUIRED = 511

_INFO: dict[int, StatusInfo] = {
    code: StatusInfo(code, name, phrase, ref) for code, name, phrase, ref, _ in _TABLE
}

responses: dict[int, str] = {code: info.phrase for code, info in _INFO.items()}
"""Status code -> reason phrase (as ``http.client.responses``)."""

_CLASS_SECTION = {1: "2", 2: "3", 3: "4", 4: "5", 5: "6"}


def describe(code: int) -> StatusInfo:
    """Name, phrase and defining reference of ``code``; unknown codes get class-based ones."""
    info = _INFO.get(code)
    if info is not None:
        return info
    if 100 <= code <= 599:
        cls = code // 100
        reference = f"RFC 9110, Section 15.{_CLASS_SECTION[cls]}"
        return StatusInfo(code, f"UNKNOWN_{cls}XX", f"Unknown {cls}xx", reference)
    return StatusInfo(code, "UNKNOWN", "Unknown", None)


CONSTANT_NAMES: tuple[str, ...] = tuple(name for row in _TABLE for name in (row[1], *row[4]))
"""Every status constant name this module defines (current names, then aliases)."""

__all__ = ["CONSTANT_NAMES", "StatusInfo", "describe", "responses", *CONSTANT_NAMES]
