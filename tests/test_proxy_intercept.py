"""Intercept: held flows wait for the UI (another thread), can be edited, resumed or killed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from inspector.bus import EventKind
from inspector.flow import Flow
from inspector.intercept import Interceptor
from tests.proxy_fixtures import LiveProxy, live_proxy
from tests.servers import EchoServer


def wait_held(proxy: LiveProxy, stage: str, count: int = 1) -> list[Flow]:
    interceptor = proxy.runtime.interceptor
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        held = [f for f in interceptor.held() if interceptor.stage_of(f.id) == stage]
        if len(held) >= count:
            return held
        time.sleep(0.01)
    raise AssertionError(f"no flow held at the {stage} stage")


@pytest.fixture
def proxy_options() -> dict[str, object]:
    return {"intercept": "~u /held"}


def test_hold_edit_and_resume_both_stages(proxy: LiveProxy, echo_server: EchoServer) -> None:
    with ThreadPoolExecutor(2) as pool:
        pending = pool.submit(
            requests.get, f"{echo_server.url}/held", proxies={"http": proxy.url}, timeout=20
        )
        (flow,) = wait_held(proxy, "request")
        # other traffic is not blocked while a flow is held
        other = requests.get(
            f"{echo_server.url}/status/200", proxies={"http": proxy.url}, timeout=10
        )
        assert other.status_code == 200
        flow.request.path = "/echo?was=/held"  # the user edits the request (still matching)...
        flow.request.headers.append((b"X-Edited", b"yes"))
        assert proxy.runtime.interceptor.resume(flow.id)
        wait_held(proxy, "response")
        assert flow.response is not None
        flow.response.body.data = b"changed by the user"  # ...and then the response
        assert proxy.runtime.interceptor.resume(flow.id)
        r = pending.result(timeout=10)
    assert r.status_code == 200 and r.content == b"changed by the user"
    assert r.headers["Content-Length"] == str(len(b"changed by the user"))
    received = echo_server.received[-1]
    assert received.path == "/echo?was=/held" and ("X-Edited", "yes") in received.headers
    assert flow.intercepted
    assert EventKind.INTERCEPTED in proxy.kinds(flow)


def test_kill_answers_the_client_and_records_the_error(
    proxy: LiveProxy, echo_server: EchoServer
) -> None:
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            requests.get, f"{echo_server.url}/held/1", proxies={"http": proxy.url}, timeout=20
        )
        (flow,) = wait_held(proxy, "request")
        killer = threading.Thread(target=proxy.runtime.interceptor.kill, args=(flow.id,))
        killer.start()
        killer.join()
        r = pending.result(timeout=10)
    assert r.status_code == 502 and "killed by the user" in r.text
    finished = proxy.finished(1)[-1]
    assert finished is flow and flow.error is not None
    assert (flow.error.exc_class, flow.error.phase) == ("FlowKilled", "intercept")
    assert not echo_server.received or echo_server.received[-1].path != "/held/1"


def test_filter_can_change_and_resume_unknown_is_false(
    proxy: LiveProxy, echo_server: EchoServer
) -> None:
    interceptor = proxy.runtime.interceptor
    interceptor.set_filter(None)
    assert (
        requests.get(f"{echo_server.url}/held", proxies={"http": proxy.url}, timeout=10).status_code
        == 200
    )
    assert interceptor.held() == []
    assert interceptor.resume("no-such-flow") is False
    assert interceptor.kill("no-such-flow") is False


def test_bad_filter_raises() -> None:
    from inspector.filters import FilterError

    with pytest.raises(FilterError):
        Interceptor("~x")


def test_a_held_request_can_be_sent_elsewhere(proxy: LiveProxy, echo_server: EchoServer) -> None:
    other = EchoServer()
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                requests.post,
                f"{echo_server.url}/held",
                data=b"original",
                proxies={"http": proxy.url},
                timeout=20,
            )
            (flow,) = wait_held(proxy, "request")
            flow.request.port = other.port
            flow.request.body.data = b"edited body, longer than before"
            proxy.runtime.interceptor.resume(flow.id)
            wait_held(proxy, "response")
            proxy.runtime.interceptor.resume(flow.id)
            assert pending.result(timeout=10).status_code == 200
        assert other.received[-1].body == b"edited body, longer than before"
        assert not echo_server.received
    finally:
        other.close()


def test_a_response_too_big_to_hold_is_relayed_unheld(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    with live_proxy(tmp_path, intercept="~u /bytes", body_limit=1000) as proxy:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                requests.get,
                f"{echo_server.url}/bytes/300000",
                proxies={"http": proxy.url},
                timeout=20,
            )
            (flow,) = wait_held(proxy, "request")
            proxy.runtime.interceptor.resume(flow.id)
            r = pending.result(timeout=10)
        (done,) = proxy.finished(1)
    assert r.content == b"x" * 300000
    assert done.response is not None and done.response.body.size == 300000
    assert done.response.body.truncated
