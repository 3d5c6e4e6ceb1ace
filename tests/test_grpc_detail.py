"""The flow detail of real gRPC calls (grpcio through the proxy): status by name, the messages."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from inspector.flow import Flow
from inspector.tui.views import request_head, response_head
from tests.grpc_peers import GrpcServer, call
from tests.proxy_fixtures import live_proxy


@pytest.fixture(scope="module")
def grpc_flows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Flow]]:
    """Three calls over h2c inside CONNECT (grpc_proxy), by method path."""
    server = GrpcServer()
    mp = pytest.MonkeyPatch()
    try:
        with live_proxy(tmp_path_factory.mktemp("grpc-detail")) as proxy:
            mp.setenv("grpc_proxy", proxy.url)
            mp.delenv("no_grpc_proxy", raising=False)
            mp.delenv("no_proxy", raising=False)
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                assert call(channel, "Stream", b"abc") == [b"abc0", b"abc1", b"abc2"]
                with pytest.raises(grpc.RpcError):
                    call(channel, "Missing", b"x" * 300)
            yield {f.request.path: f for f in proxy.finished(2)}
    finally:
        mp.undo()
        server.close()


def test_failed_call_shows_its_grpc_status_meaning_and_message(
    grpc_flows: dict[str, Flow],
) -> None:
    shown = response_head(grpc_flows["/test.Echo/Missing"]).plain
    assert shown.startswith("200 OK  (OK, RFC 9110, Section 15.3.1)\n")
    assert "\ngrpc 5 NOT_FOUND: a requested entity was not found\n" in shown
    assert '\nthe server said "no such thing"\n' in shown
    assert "gRPC messages: 0, 0 B" in shown  # a trailers-only answer carries none


def test_messages_are_listed_with_size_flag_and_offset(grpc_flows: dict[str, Flow]) -> None:
    stream = grpc_flows["/test.Echo/Stream"]
    shown = response_head(stream).plain
    assert "\ngrpc 0 OK: the call succeeded\n" in shown
    listed = shown.split("gRPC messages: ", 1)[1].splitlines()
    assert listed[0] == "3, 12 B"
    assert [" ".join(line.split()) for line in listed[1:4]] == [
        "#1 4 B plain at byte 5",
        "#2 4 B plain at byte 14",
        "#3 4 B plain at byte 23",
    ]
    request = request_head(grpc_flows["/test.Echo/Missing"]).plain
    assert (
        " ".join(request.split("gRPC messages: ", 1)[1].split())
        == "1, 300 B #1 300 B plain at byte 5"
    )
