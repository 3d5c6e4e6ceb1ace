"""inspector.grpc: gRPC status by name and message framing, and the dump line that shows them."""

from __future__ import annotations

from inspector import grpc
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse, Timings
from inspector.render import flow_line


def _call(trailers: list[tuple[bytes, bytes]], head: list[tuple[bytes, bytes]] = ()) -> Flow:
    req = FlowRequest(
        "POST",
        "https",
        "h",
        50051,
        "/pkg.Svc/Get",
        http_version="HTTP/2",
        headers=[(b"content-type", b"application/grpc")],
    )
    flow = Flow(req, timings=Timings(start=1.0, end=1.004))
    flow.response = FlowResponse(
        200,
        "",
        http_version="HTTP/2",
        headers=[(b"content-type", b"application/grpc"), *head],
        trailers=trailers,
        body=FlowBody(b"", 0),
    )
    return flow


def test_status_from_trailers_by_name_with_its_meaning() -> None:
    call = grpc.status(_call([(b"grpc-status", b"5"), (b"grpc-message", b"no%20such%20user")]))
    assert call is not None
    assert (call.code, call.name, call.message) == (5, "NOT_FOUND", "no such user")
    assert call.meaning == "a requested entity was not found"


def test_trailers_only_response_reads_the_head() -> None:
    call = grpc.status(_call([], head=[(b"grpc-status", b"12")]))
    assert call is not None and call.name == "UNIMPLEMENTED"


def test_unknown_code_gets_a_name_that_says_so() -> None:
    call = grpc.status(_call([(b"grpc-status", b"42")]))
    assert call is not None and call.name == "UNKNOWN_STATUS_42"


def test_not_grpc_has_no_grpc_status() -> None:
    flow = _call([(b"grpc-status", b"5")])
    flow.request.headers = [(b"content-type", b"application/json")]
    assert grpc.status(flow) is None


def test_dump_line_shows_the_grpc_status_after_the_http_status() -> None:
    line = flow_line(_call([(b"grpc-status", b"5")]))
    assert line == "POST https://h:50051/pkg.Svc/Get -> 200 OK grpc NOT_FOUND  0 B  4 ms"


def test_length_prefixed_messages_are_listed() -> None:
    body = b"\x00\x00\x00\x00\x03abc" + b"\x01\x00\x00\x00\x02zz" + b"\x00\x00\x00\x00\x09par"
    found = grpc.messages(body)
    assert [(m.compressed, m.size, m.offset, m.complete) for m in found] == [
        (False, 3, 5, True),
        (True, 2, 13, True),
        (False, 9, 20, False),
    ]
