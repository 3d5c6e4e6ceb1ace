"""Bodies stream through with bounded memory; Expect: 100-continue with curl."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from inspector.store import Store
from tests.conftest import needs_curl
from tests.proxy_fixtures import live_proxy, read_response
from tests.proxy_process import ProxyProcess
from tests.servers import EchoServer, read_request_head

BIG = 256 * 1024 * 1024
BLOCK = b"b" * 65536


def serve_big(conn: socket.socket) -> None:
    """Answer any request with BIG bytes, written block by block."""
    head = read_request_head(conn)
    if head.startswith(b"POST"):
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        got = len(head.partition(b"\r\n\r\n")[2])
        while got < length:
            chunk = conn.recv(1 << 20)
            if not chunk:
                return
            got += len(chunk)
        body = str(got).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
    for _ in range(BIG // len(BLOCK)):
        conn.sendall(BLOCK)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(180)
def test_256_mib_both_ways_with_bounded_memory(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    peer = raw_server(serve_big)
    proxy = ProxyProcess(tmp_path, "-q")
    try:
        with socket.create_connection((proxy.host, proxy.port), timeout=60) as s:
            s.sendall(f"GET {peer.url}/big HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            received = len(data.partition(b"\r\n\r\n")[2])
            while received < BIG:
                chunk = s.recv(1 << 20)
                assert chunk, f"closed after {received} bytes"
                received += len(chunk)
            # and upload the same amount on the same connection
            s.sendall(
                f"POST {peer.url}/up HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n".encode()
            )
            for _ in range(BIG // len(BLOCK)):
                s.sendall(BLOCK)
            status, _, body = read_response(s)
        assert (status, body) == (200, str(BIG).encode())
        peak = peak_rss_kib(proxy.proc.pid)
        print(f"proxy peak RSS: {peak} KiB")
    finally:
        proxy.stop()
    assert peak < 150 * 1024, f"proxy peak RSS {peak} KiB for a {BIG >> 20} MiB body"
    with Store(proxy.session, readonly=True) as store:
        flows = list(store.iter_flows())
    sizes = sorted((f.request.body.size, f.response.body.size) for f in flows)  # type: ignore[union-attr]
    assert sizes == [(0, BIG), (BIG, len(str(BIG)))]
    assert all(f.request.body.size == 0 or f.request.body.truncated for f in flows)


@needs_curl
def test_expect_100_continue_with_curl(tmp_path: Path, echo_server: EchoServer) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"c" * 200_000)
    with live_proxy(tmp_path) as proxy:
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "-v",
                "--max-time",
                "20",
                "-x",
                proxy.url,
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                f"@{body}",
                f"{echo_server.url}/echo",
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
        (flow,) = proxy.finished(1)
    assert out.returncode == 0, out.stderr
    assert b"HTTP/1.1 100 Continue" in out.stderr  # the proxy let curl go on at once
    assert echo_server.received[-1].body == b"c" * 200_000
    assert flow.request.body.size == 200_000
    assert flow.request.header("Expect") == "100-continue"  # forwarded as sent


def test_expect_100_continue_is_not_sent_when_the_upstream_is_down(tmp_path: Path) -> None:
    with socket.socket() as dead, live_proxy(tmp_path) as proxy:
        dead.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{dead.getsockname()[1]}/"
        with proxy.connect() as s:
            s.sendall(
                f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                "Expect: 100-continue\r\n\r\n".encode()
            )
            status, headers, _ = read_response(s)
    assert status == 502 and headers["connection"] == "close"  # body never sent: close
