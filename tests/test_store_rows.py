"""The record text the writer stores is json's own encoding of ``flow_to_record``."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.filters import header_text
from inspector.flow import (
    Flow,
    FlowBody,
    FlowError,
    FlowRequest,
    FlowResponse,
    Phase,
    TLSInfo,
    WebSocketMessage,
)
from inspector.store import flow_from_record, flow_to_record
from inspector.store.rows import flow_rows, record_json

texts = st.text(max_size=12)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**70), 2**70)
pairs = st.lists(st.tuples(st.binary(max_size=6), st.binary(max_size=6)), max_size=4)
bodies = st.builds(
    FlowBody,
    st.binary(max_size=8),
    st.integers(0, 2**40),
    st.booleans(),
    st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
)
requests = st.builds(
    FlowRequest, texts, st.sampled_from(["http", "https"]), texts, st.integers(0, 65535),
    texts, st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2"]), pairs, bodies, pairs, numbers,
)  # fmt: skip
responses = st.builds(
    FlowResponse, st.integers(100, 999), texts, st.just("HTTP/1.1"), pairs, bodies, pairs,
    numbers,
)  # fmt: skip
messages = st.builds(
    WebSocketMessage, numbers, st.booleans(), st.sampled_from([1, 2, 8]), st.integers(0, 99),
    st.binary(max_size=6),
)  # fmt: skip
errors = st.builds(FlowError, texts, texts, st.sampled_from(list(Phase)), numbers)


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    flow = Flow(draw(requests), id=draw(texts), client_addr=(draw(texts), draw(st.integers())))
    flow.mode = draw(texts)
    flow.response = draw(st.none() | responses)
    flow.timings.end = draw(st.none() | numbers)
    flow.tls = draw(st.none() | st.builds(TLSInfo, sni=st.none() | texts))
    flow.websocket = draw(st.lists(messages, max_size=2))
    flow.error = draw(st.none() | errors)
    flow.replay_of = draw(st.none() | texts)
    flow.intercepted = draw(st.booleans())
    flow.comment = draw(texts)
    flow.modified_by = draw(st.lists(texts, max_size=2))
    if draw(st.booleans()):
        flow.original_request = draw(requests)
        if draw(st.booleans()):  # most originals differ from the current request in headers
            original = flow.original_request
            original.method, original.path = flow.request.method, flow.request.path
            original.body = flow.request.body
    if draw(st.booleans()):
        flow.original_response = draw(responses)
        if flow.response is not None and draw(st.booleans()):
            flow.original_response.body = flow.response.body
    return flow


@settings(max_examples=300, deadline=None)
@given(flows())
def test_the_record_text_is_json_of_the_record(flow: Flow) -> None:
    assert record_json(flow) == json.dumps(flow_to_record(flow), separators=(",", ":"))
    assert record_json(flow) == record_json(flow)  # a second time, from the kept texts


@settings(max_examples=100, deadline=None)
@given(flows())
def test_the_record_text_reads_back(flow: Flow) -> None:
    rows = flow_rows(flow)
    back = flow_from_record(json.loads(rows.record), False, dict(rows.bodies))
    assert back.request.headers == flow.request.headers
    assert back.request.trailers == flow.request.trailers
    assert (back.response is None) == (flow.response is None)
    if flow.response is not None and back.response is not None:
        assert back.response.headers == flow.response.headers
    assert back.modified_by == flow.modified_by


@given(pairs)
def test_header_text_is_latin_1_lines(fields: list[tuple[bytes, bytes]]) -> None:
    expected = "\n".join(f"{n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in fields)
    assert header_text(fields) == expected
