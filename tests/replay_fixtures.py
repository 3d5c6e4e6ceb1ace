"""Flow builders and checkers shared by the replay, export and import tests."""

from __future__ import annotations

import hashlib
import time

from inspector.flow import Body, Flow, FlowError, Phase, Request, Response, Timings


def body(data: bytes, *, size: int | None = None) -> Body:
    """A recorded body; ``size`` larger than ``data`` makes it truncated."""
    full = len(data) if size is None else size
    digest = hashlib.sha256(data).hexdigest() if full == len(data) else None
    return Body(data=data, size=full, truncated=full > len(data), sha256=digest)


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
    req = Request(
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
        flow.response = Response(
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
    flow.response = Response(
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
