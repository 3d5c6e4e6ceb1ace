"""Flow builders and checkers shared by the replay, export and import tests."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from inspector.flow import Flow, FlowBody, FlowError, FlowRequest, FlowResponse, Phase, Timings


def body(data: bytes, *, size: int | None = None) -> FlowBody:
    """A recorded body; ``size`` larger than ``data`` makes it truncated."""
    full = len(data) if size is None else size
    digest = hashlib.sha256(data).hexdigest() if full == len(data) else None
    return FlowBody(data=data, size=full, truncated=full > len(data), sha256=digest)


def make_flow(
    url_host: str,
    port: int,
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    request_body: bytes = b"",
    *,
    scheme: str = "http",
    status: int | None = 200,
    response_headers: list[tuple[bytes, bytes]] | None = None,
    response_body: bytes = b"hello",
    host_header: bool = True,
) -> Flow:
    """A finished flow as the proxy would record it (Host header first unless told not to)."""
    now = time.time()
    authority = url_host if port in (80, 443) else f"{url_host}:{port}"
    fields = [(b"Host", authority.encode())] if host_header else []
    fields += headers if headers is not None else [(b"User-Agent", b"test/1")]
    req = FlowRequest(
        method=method,
        scheme=scheme,
        host=url_host,
        port=port,
        path=path,
        headers=fields,
        body=body(request_body),
        timestamp=now,
    )
    timings = Timings(
        start=now,
        connect_start=now,
        connect_end=now + 0.001,
        request_sent=now + 0.002,
        response_start=now + 0.003,
        end=now + 0.004,
    )
    flow = Flow(request=req, timings=timings)
    if status is not None:
        resp_headers = response_headers
        if resp_headers is None:
            resp_headers = [
                (b"Content-Type", b"text/plain"),
                (b"Content-Length", str(len(response_body)).encode()),
            ]
        flow.response = FlowResponse(
            status_code=status,
            reason="OK" if status == 200 else "",
            headers=resp_headers,
            body=body(response_body),
            timestamp=now + 0.003,
        )
    else:
        flow.error = FlowError(
            "ConnectionRefusedError", "[Errno 111] Connection refused", Phase.CONNECT, now
        )
    return flow


def visible_headers(received: list[tuple[str, str]], drop: tuple[str, ...] = ()) -> list:
    """Headers an EchoServer received, minus the named ones (compared case-insensitively)."""
    lowered = {d.lower() for d in drop}
    return [(n, v) for n, v in received if n.lower() not in lowered]


def record(
    host: str,
    port: int,
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    request_body: bytes = b"",
) -> Flow:
    """Send a request with the standard library's client and record it as a Flow."""
    import http.client

    fields = [(b"Host", f"{host}:{port}".encode())] + (headers or [])
    framed = any(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in fields)
    if request_body and not framed:
        fields.append((b"Content-Length", str(len(request_body)).encode()))
    start = time.time()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in fields:
            conn.putheader(name, value)
        conn.endheaders(request_body or None)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    flow = make_flow(host, port, method, path, fields, request_body, host_header=False)
    flow.timings.start = start
    flow.response = FlowResponse(
        status_code=resp.status,
        reason=resp.reason,
        headers=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in resp.getheaders()],
        body=body(data),
        timestamp=time.time(),
    )
    return flow


def write_session(path, flows: list[Flow]) -> None:
    """A session file holding ``flows`` in order, written by the real Store."""
    from inspector.store import Store

    store = Store(path)
    try:
        for flow in flows:
            store.put(flow)
        store.flush()
    finally:
        store.close()


def read_session(path) -> list[Flow]:
    from inspector.store import Store

    store = Store(path, readonly=True)
    try:
        return list(store.iter_flows())
    finally:
        store.close()


def run_inspector(*args: str, timeout: float = 60, env: dict | None = None, cwd=None):
    """``python -m inspector ARGS`` in a subprocess, from the repository root."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    full_env = dict(os.environ, PYTHONPATH=str(root), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "inspector", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or root,
        env=full_env,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listened, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JsonServer:
    """Answers every request with one JSON document and status (a changed upstream)."""

    def __init__(self, status: int, payload: object, extra_headers=()) -> None:
        encoded = json.dumps(payload).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in extra_headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a hand-written checker of the HAR 1.2 required fields and their types ---------------

NUM = (int, float)


def _need(obj: dict, where: str, fields: dict) -> None:
    assert isinstance(obj, dict), f"{where} must be an object"
    for name, kind in fields.items():
        assert name in obj, f"{where}.{name} is required"
        assert isinstance(obj[name], kind), f"{where}.{name} has type {type(obj[name]).__name__}"


def _pairs(items: list, where: str) -> None:
    for i, item in enumerate(items):
        _need(item, f"{where}[{i}]", {"name": str, "value": str})


def check_har(doc: dict) -> None:
    """Assert that ``doc`` has every field HAR 1.2 requires, with the right types."""
    _need(doc, "", {"log": dict})
    log = doc["log"]
    _need(log, "log", {"version": str, "creator": dict, "entries": list})
    assert log["version"] == "1.2"
    _need(log["creator"], "log.creator", {"name": str, "version": str})
    for i, e in enumerate(log["entries"]):
        w = f"entries[{i}]"
        _need(
            e,
            w,
            {
                "startedDateTime": str,
                "time": NUM,
                "request": dict,
                "response": dict,
                "cache": dict,
                "timings": dict,
            },
        )
        assert "T" in e["startedDateTime"]
        req, resp = e["request"], e["response"]
        _need(
            req,
            f"{w}.request",
            {
                "method": str,
                "url": str,
                "httpVersion": str,
                "cookies": list,
                "headers": list,
                "queryString": list,
                "headersSize": int,
                "bodySize": int,
            },
        )
        _pairs(req["headers"], f"{w}.request.headers")
        _pairs(req["queryString"], f"{w}.request.queryString")
        _pairs(req["cookies"], f"{w}.request.cookies")
        if "postData" in req:
            _need(req["postData"], f"{w}.request.postData", {"mimeType": str, "text": str})
        _need(
            resp,
            f"{w}.response",
            {
                "status": int,
                "statusText": str,
                "httpVersion": str,
                "cookies": list,
                "headers": list,
                "content": dict,
                "redirectURL": str,
                "headersSize": int,
                "bodySize": int,
            },
        )
        _pairs(resp["headers"], f"{w}.response.headers")
        _pairs(resp["cookies"], f"{w}.response.cookies")
        _need(resp["content"], f"{w}.response.content", {"size": int, "mimeType": str})
        _need(
            e["timings"],
            f"{w}.timings",
            {k: NUM for k in ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")},
        )
        for key, value in e["timings"].items():
            assert value >= 0 or value == -1, f"{w}.timings.{key} = {value}"
        if "serverIPAddress" in e:
            assert isinstance(e["serverIPAddress"], str)
