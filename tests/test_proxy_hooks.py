"""The exchange layer's two stops (inspector/proxy/hooks.py), with hooks passed to a real
ProxyServer: what the hooks see, what the origin receives and what the client gets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from certs import CertificateAuthority, CertStore
from inspector.bus import Bus
from inspector.config import Config
from inspector.flow import Flow, FlowBody, FlowResponse
from inspector.proxy import ProxyServer
from tests.servers import EchoServer


class RecordingHook:
    """Adds a header to requests to /echo, answers /local itself, rewrites response bodies."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    def wants_request(self, flow: Flow) -> bool:
        return True

    async def request(self, flow: Flow) -> None:
        self.seen.append(("request", flow.request.path, flow.request.body.data))
        if flow.request.path == "/local":
            flow.response = FlowResponse(201, "Created", body=FlowBody(b"made here"))
            return
        flow.request.headers.append((b"X-Hooked", b"yes"))

    def wants_response(self, flow: Flow) -> bool:
        return flow.request.path == "/status/404"

    async def response(self, flow: Flow) -> None:
        assert flow.response is not None
        self.seen.append(("response", flow.request.path, flow.response.body.data))
        flow.response.body = FlowBody(b"rewritten by the hook")


@contextmanager
def hooked_proxy(tmp: Path, hook: RecordingHook) -> Iterator[str]:
    """A ProxyServer with ``hook`` on its own loop in a thread; yields the proxy URL."""
    config = Config(listen_port=0, confdir=tmp / "conf", session=tmp / "s.db")
    certstore = CertStore(CertificateAuthority.load_or_create(config.confdir))
    server = ProxyServer(config, Bus(), certstore, hooks=[hook])
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()

    async def main() -> None:
        await server.start()
        started.set()
        await stop.wait()
        await server.shutdown(1.0)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{server.address[1]}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_hooks_see_the_whole_request_edit_it_and_can_answer(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    hook = RecordingHook()
    with hooked_proxy(tmp_path, hook) as proxy, requests.Session() as s:
        s.proxies = {"http": proxy}
        echoed = s.post(f"{echo_server.url}/echo", data=b"x" * 70000, timeout=10)
        local = s.get(f"{echo_server.url}/local", timeout=10)
        missing = s.get(f"{echo_server.url}/status/404", timeout=10)
    assert ("X-Hooked", "yes") in [tuple(h) for h in json.loads(echoed.content)["headers"]]
    assert (local.status_code, local.content) == (201, b"made here")
    assert [r.path for r in echo_server.received] == ["/echo", "/status/404"]  # not /local
    assert (missing.status_code, missing.content) == (404, b"rewritten by the hook")
    assert missing.headers["Content-Length"] == str(len(b"rewritten by the hook"))
    assert hook.seen == [
        ("request", "/echo", b"x" * 70000),
        ("request", "/local", b""),
        ("request", "/status/404", b""),
        ("response", "/status/404", b"status 404\n"),
    ]
