"""Fixed flows for TUI tests, snapshots, screenshots and the TUI benchmark.

Everything is deterministic: fixed ids, fixed timestamps, fixed bodies, so that
snapshots do not change from run to run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from inspector.flow import (
    Flow,
    FlowBody,
    FlowError,
    FlowRequest,
    FlowResponse,
    Phase,
    Timings,
    TLSInfo,
    WebSocketMessage,
)
from inspector.store import Store

BASE_TIME = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC


def _body(data: bytes, *, full: int | None = None) -> FlowBody:
    size = full if full is not None else len(data)
    return FlowBody(
        data=data,
        size=size,
        truncated=size > len(data),
        sha256=hashlib.sha256(data).hexdigest() if full is None else "9f86d081884c7d65" * 4,
    )


def _flow(
    n: int,
    method: str,
    url_host: str,
    path: str,
    *,
    scheme: str = "https",
    port: int | None = None,
    status: int | None = 200,
    reason: str | None = None,
    ctype: str = "application/json",
    body: bytes = b"{}",
    req_body: bytes = b"",
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    error: FlowError | None = None,
    duration: float = 0.042,
) -> Flow:
    start = BASE_TIME + n * 1.5
    port = port or (443 if scheme == "https" else 80)
    req_headers = [
        (b"Host", url_host.encode()),
        (b"User-Agent", b"curl/8.5.0"),
        (b"Accept", b"*/*"),
    ]
    if req_body:
        req_headers += [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(req_body)).encode()),
        ]
    request = FlowRequest(
        method=method,
        scheme=scheme,
        host=url_host,
        port=port,
        path=path,
        headers=req_headers,
        body=_body(req_body),
        timestamp=start,
    )
    response = None
    if status is not None:
        from protocol.status import describe

        headers = [
            (b"Content-Type", ctype.encode()),
            (b"Content-Length", str(len(body)).encode()),
            (b"Server", b"nginx/1.24.0"),
            *(extra_headers or []),
        ]
        response = FlowResponse(
            status_code=status,
            reason=reason if reason is not None else describe(status).phrase,
            headers=headers,
            body=_body(body),
            timestamp=start + duration * 0.6,
        )
    timings = Timings(
        start=start,
        connect_start=start + 0.001,
        connect_end=start + 0.004,
        tls_end=start + 0.012 if scheme == "https" else None,
        request_sent=start + 0.013,
        response_start=start + duration * 0.6 if status is not None else None,
        end=start + duration,
    )
    tls = None
    if scheme == "https":
        tls = TLSInfo(
            sni=url_host,
            client_alpn="http/1.1",
            client_version="TLSv1.3",
            upstream_version="TLSv1.3",
            upstream_cipher="TLS_AES_256_GCM_SHA384",
            upstream_alpn="http/1.1",
            upstream_cert_subject=f"CN={url_host}",
            upstream_cert_issuer="CN=Example Test CA",
        )
    return Flow(
        request=request,
        id=f"{n:032x}",
        client_addr=("127.0.0.1", 50000 + n),
        response=response,
        timings=timings,
        tls=tls,
        error=error,
    )


def sample_flows() -> list[Flow]:
    """A dozen flows covering every status class, an error, a replay, a mark and bodies."""
    users = json.dumps({"users": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Linus"}]})
    flows = [
        _flow(1, "GET", "api.example.com", "/v1/users?page=1", body=users.encode()),
        _flow(
            2,
            "POST",
            "api.example.com",
            "/v1/login",
            req_body=b'{"user":"ada","password":"hunter2"}',
            body=b'{"token":"abc123"}',
            status=201,
        ),
        _flow(
            3,
            "GET",
            "www.example.com",
            "/",
            ctype="text/html; charset=utf-8",
            body=b"<!DOCTYPE html><html><head><title>Example</title></head>"
            b"<body><h1>Example Domain</h1><p>For use in examples.</p></body></html>",
        ),
        _flow(4, "GET", "www.example.com", "/old", status=301, ctype="text/html", body=b""),
        _flow(5, "GET", "cdn.example.com", "/logo.png", ctype="image/png", body=_png()),
        _flow(
            6,
            "GET",
            "api.example.com",
            "/v1/missing",
            status=404,
            reason="Nope",
            body=b'{"error":"not found"}',
        ),
        _flow(
            7,
            "GET",
            "api.example.com",
            "/v1/report.json",
            body=gzip.compress(b'{"rows": [1, 2, 3]}', mtime=0),
            extra_headers=[(b"Content-Encoding", b"gzip")],
        ),
        _flow(
            8,
            "GET",
            "127.0.0.1",
            "/slow",
            scheme="http",
            port=9,
            status=None,
            error=FlowError(
                "ConnectionRefusedError",
                "[Errno 111] Connection refused",
                Phase.CONNECT,
                BASE_TIME + 8 * 1.5 + 0.002,
            ),
            duration=0.002,
        ),
        _flow(9, "DELETE", "api.example.com", "/v1/users/2", status=500, body=b"oops"),
        _flow(
            10,
            "GET",
            "downloads.example.com",
            "/big.bin",
            ctype="application/octet-stream",
            body=bytes(range(256)) * 4,
        ),
        _flow(
            11,
            "GET",
            "api.example.com",
            "/v1/users?page=1",
            body=users.encode(),
            duration=0.031,
        ),
        _flow(
            12,
            "POST",
            "api.example.com",
            "/v1/upload",
            status=None,
            error=FlowError(
                "BadStatusLine",
                "BadStatusLine('HTTP/1.1 2OO OK\\r\\n')",
                Phase.STATUS_LINE,
                BASE_TIME + 12 * 1.5 + 0.03,
            ),
            duration=0.03,
        ),
    ]
    flows[10].replay_of = flows[0].id
    flows[10].mode = "replay"
    flows[1].marked = True
    flows[9].response.body = _body(bytes(range(256)) * 4, full=12_300_000)
    flows[2].websocket = []
    ws = _flow(13, "GET", "chat.example.com", "/socket", status=101, body=b"", ctype="")
    ws.websocket = [
        WebSocketMessage(BASE_TIME + 20, True, 1, 13, b'{"hello": 1}'),
        WebSocketMessage(BASE_TIME + 20.5, False, 1, 9, b'{"ok": 1}'),
    ]
    flows.append(ws)
    return flows


def marker_flows() -> list[Flow]:
    """Flows showing every row marker: HTTP/2 and gRPC, HTTP/1.0 plain, a WebSocket, a flow
    changed by a rule, a replay of it and a marked one."""
    grpc = _flow(
        1, "POST", "grpc.example.com", "/pkg.Users/Get", port=50051, ctype="application/grpc",
        body=b"\x00\x00\x00\x00\x00", req_body=b"\x00\x00\x00\x00\x00",
    )  # fmt: skip
    grpc.request.headers = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
    grpc.request.http_version = grpc.response.http_version = "HTTP/2"
    grpc.response.trailers = [(b"grpc-status", b"5"), (b"grpc-message", b"no such user")]
    old = _flow(2, "GET", "legacy.example.com", "/index.html", scheme="http", ctype="text/html")
    old.request.http_version = old.response.http_version = "HTTP/1.0"
    ws = _flow(3, "GET", "chat.example.com", "/live", scheme="http", status=101, body=b"")
    ws.websocket = [WebSocketMessage(BASE_TIME + 5, True, 1, 2, b"hi")]
    changed = _flow(4, "GET", "api.example.com", "/v1/flags")
    changed.original_request = replace(changed.request, path="/v1/flags?beta=0")
    changed.modified_by = ["--modify-headers /~q/X-Beta/1"]
    replay = _flow(5, "GET", "api.example.com", "/v1/flags", duration=0.03)
    replay.replay_of, replay.mode, replay.marked = changed.id, "replay", True
    return [grpc, old, ws, changed, replay]


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 64, 32, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x10\x80\xf0" * 64 for _ in range(32))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def numbered_flow(n: int) -> Flow:
    """A small finished flow for bulk tests and the benchmark (status varies with n)."""
    status = (200, 200, 200, 304, 404, 500, 201)[n % 7]
    return _flow(
        n,
        ("GET", "GET", "POST", "GET", "PUT")[n % 5],
        f"host{n % 50}.example.com",
        f"/items/{n}?q={n % 13}",
        status=status,
        body=b'{"n": %d}' % n,
    )


def build_session(path: Path, flows: list[Flow]) -> Path:
    """Write ``flows`` to a new session file at ``path``."""
    store = Store(path)
    for flow in flows:
        store.put(flow)
    store.close()
    return path


# --- fixed scenes: snapshot tests and the README screenshots ------------------------------

SCREEN_SIZE = (150, 36)


@dataclass(frozen=True)
class Scene:
    name: str
    live: bool  # a first-run "live" screen rather than a saved session
    row: int | None = None  # open this row's detail
    press: tuple[str, ...] = ()
    flows: str = "sample"  # "sample" (sample_flows), or "markers": marker_flows() arriving live


SCENES = (
    Scene("flow_list", live=False),
    Scene("detail_response", live=False, row=0),
    Scene("detail_request", live=False, row=1, press=("shift+tab",)),
    Scene("detail_image", live=False, row=4),
    Scene("events_pane", live=False, press=("E",)),
    Scene("help", live=False, press=("question_mark",)),
    Scene("first_run", live=True),
    Scene("row_markers", live=True, flows="markers"),
)


def scene_app(scene: Scene, tmp: Path):  # -> InspectorApp
    """The app for ``scene`` over fixed data, with nothing that changes between runs."""
    from inspector.bus import Bus
    from inspector.tui.app import InspectorApp
    from inspector.tui.session import Session, open_saved
    from inspector.tui.widgets.status_bar import SourceInfo

    if scene.live:
        info = SourceInfo(
            session="~/.inspector/sessions/20260101-120000.db",
            address="http://127.0.0.1:8080",
            mode="regular",
            ca_path="~/.inspector/ca.pem",
        )
        session = Session(store=Store(tmp / "empty.db"), info=info, bus=Bus())
    else:
        session = open_saved(build_session(tmp / "demo.db", sample_flows()))
        session.info = replace(session.info, session="demo.db")
    return InspectorApp(session)


async def prepare_scene(scene: Scene, pilot) -> None:  # pilot: textual.pilot.Pilot
    """Wait for the data, then drive the app to the scene's screen."""
    from textual.widgets import Input, TextArea

    from inspector.tui.widgets.flow_table import FlowTable

    app = pilot.app
    expected = 0 if scene.live else 13
    if scene.flows == "markers":
        from inspector.bus import EventKind, FlowEvent

        expected = len(marker_flows())
        for flow in marker_flows():
            app.session.bus.publish(FlowEvent(EventKind.RESPONSE, flow))
    if expected:
        for _ in range(200):  # the rows, and for a saved session the header's figures
            if len(app.state.index) == expected and app.loaded:
                break
            await pilot.pause(0.02)
    if scene.row is not None:
        table = app.screen.query_one(FlowTable)
        table.follow = False
        table.cursor = scene.row
        await pilot.press("enter")
    await pilot.pause(0.1)
    if scene.press:
        await pilot.press(*scene.press)
    await pilot.pause(0.1)
    from inspector.tui.widgets.body_viewer import BodyViewer

    for _ in range(200):  # body colours and image previews come from workers
        if not any(v.colouring or v.previewing for v in app.screen.query(BodyViewer)):
            break
        await pilot.pause(0.02)
    for widget in app.screen.query(TextArea):
        widget.cursor_blink = False
    for widget in app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause(0.05)


WAIT = 15.0  # seconds any condition may take before a UI test fails


async def wait_for(pilot, predicate, what: str) -> None:  # pilot: textual.pilot.Pilot
    """Let the app run until ``predicate()`` holds (bounded by WAIT)."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def bus_app(tmp_path: Path):  # -> tuple[InspectorApp, Bus, Store]
    """The app over an empty live session fed by a bus the test publishes on."""
    from inspector.bus import Bus
    from inspector.tui.app import InspectorApp
    from inspector.tui.session import Session
    from inspector.tui.widgets.status_bar import SourceInfo

    store = Store(tmp_path / "s.db")
    bus = Bus()
    info = SourceInfo(session=str(tmp_path / "s.db"), address="http://127.0.0.1:8080")
    return InspectorApp(Session(store=store, info=info, bus=bus)), bus, store
