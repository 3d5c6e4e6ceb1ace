"""The one flow-line renderer and its helpers."""

from __future__ import annotations

import pytest

from inspector.flow import Flow, FlowBody, FlowError, FlowRequest, FlowResponse, Phase, Timings
from inspector.render import REPLAY_PREFIX, duration_text, flow_line, human_size, status_text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1234, "1.2 kB"),
        (12_345, "12.3 kB"),
        (99_949, "99.9 kB"),
        (99_950, "100 kB"),
        (123_456, "123 kB"),
        (999_499, "999 kB"),
        (999_500, "1.0 MB"),
        (3_400_000, "3.4 MB"),
        (5_000_000_000, "5.0 GB"),
        (10**18, "1000 PB"),
    ],
)
def test_human_size_uses_decimal_units(n: int, text: str) -> None:
    assert human_size(n) == text


def test_human_size_refuses_negative_sizes() -> None:
    with pytest.raises(ValueError, match="negative"):
        human_size(-1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.0 ms"),
        (0.0004, "0.4 ms"),
        (0.003, "3 ms"),
        (0.0031, "3 ms"),
        (0.2504, "250 ms"),
        (0.9994, "999 ms"),
        (0.9996, "1.00 s"),
        (1.2449, "1.24 s"),
        (59.99, "59.99 s"),
        (125.2, "2 min 5 s"),
        (-0.5, "0.0 ms"),  # a clock step backwards never prints a negative time
    ],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("code", "reason", "text"),
    [
        (404, "Not Found", "404 Not Found"),
        (404, "", "404 Not Found"),
        (404, None, "404 Not Found"),
        (200, "ok", "200 OK"),
        (200, "All good", '200 OK ("All good")'),
        (503, "", "503 Service Unavailable"),
        (599, "", "599 Unknown 5xx"),
        (599, "Network Timeout", "599 Network Timeout"),
        (200, "line\r\nbreak", '200 OK ("line break")'),
    ],
)
def test_status_text_names_the_status(code: int, reason: str | None, text: str) -> None:
    assert status_text(code, reason) == text


def make_flow(**kw: object) -> Flow:
    flow = Flow(FlowRequest("GET", "http", "127.0.0.1", 9000, "/x"), timings=Timings(start=100.0))
    for name, value in kw.items():
        setattr(flow, name, value)
    return flow


def test_finished_flow_line_matches_spec() -> None:
    flow = make_flow(response=FlowResponse(404, "Not Found", body=FlowBody(b"x" * 100, size=1234)))
    flow.timings.end = 100.003
    assert flow_line(flow) == "GET http://127.0.0.1:9000/x -> 404 Not Found  1.2 kB  3 ms"


def test_failed_flow_line_matches_spec() -> None:
    flow = Flow(FlowRequest("GET", "http", "127.0.0.1", 9, ""), timings=Timings(start=1.0, end=1.1))
    flow.error = FlowError(
        "ConnectionRefusedError", "[Errno 111] Connection refused", Phase.CONNECT
    )
    assert flow_line(flow) == (
        "GET http://127.0.0.1:9 -> ERROR ConnectionRefusedError: [Errno 111] Connection refused"
    )


def test_error_after_response_head_keeps_the_status() -> None:
    flow = make_flow(
        response=FlowResponse(200, "OK"),
        error=FlowError("IncompleteRead", "IncompleteRead(10 bytes read,\n 90 more)", Phase.BODY),
    )
    assert flow_line(flow) == (
        "GET http://127.0.0.1:9000/x -> ERROR IncompleteRead: "
        "IncompleteRead(10 bytes read, 90 more) (after 200 OK)"
    )


def test_replayed_flow_is_prefixed() -> None:
    flow = make_flow(
        response=FlowResponse(200, "OK", body=FlowBody(b"hello", size=5)), replay_of="abc"
    )
    flow.timings.end = 101.5
    line = flow_line(flow)
    assert line.startswith(REPLAY_PREFIX)
    assert line == "[replay] GET http://127.0.0.1:9000/x -> 200 OK  5 B  1.50 s"


def test_pending_flow_and_missing_end_time() -> None:
    assert flow_line(make_flow()) == "GET http://127.0.0.1:9000/x -> ..."
    flow = make_flow(response=FlowResponse(204, ""))
    assert flow_line(flow) == "GET http://127.0.0.1:9000/x -> 204 No Content  0 B"


def test_https_default_port_and_ipv6_urls() -> None:
    flow = Flow(
        FlowRequest("POST", "https", "::1", 443, "/a?b=c"), timings=Timings(start=0, end=0.01)
    )
    flow.response = FlowResponse(201, "Created", body=FlowBody(b"", size=0))
    assert flow_line(flow) == "POST https://[::1]/a?b=c -> 201 Created  0 B  10 ms"


def test_connect_flow_line() -> None:
    flow = Flow(FlowRequest("CONNECT", "https", "example.test", 443, "example.test:443"))
    flow.error = FlowError("TimeoutError", "timed out", Phase.CONNECT)
    assert flow_line(flow) == "CONNECT example.test:443 -> ERROR TimeoutError: timed out"
