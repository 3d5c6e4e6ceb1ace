"""Instructions per request of the proxy, under callgrind: a figure that holds still on a
shared machine, for before/after comparisons of the hot path.

    python bench/callgrind_proxy.py                      # this tree
    python bench/callgrind_proxy.py --src /path/to/other/checkout   # another version
    python bench/callgrind_proxy.py --tls                # intercepted HTTPS (CONNECT)
    python bench/callgrind_proxy.py --load headers       # with 10 -H rules (see LOADS)
    python bench/callgrind_proxy.py --proxy-arg=-H --proxy-arg='/X-A/1'   # any options

The proxy (``inspector dump -q``, plain asyncio loop) runs under ``valgrind --tool=callgrind``;
a client sends N keep-alive GETs through it to a local HTTP server, one after the other, in
two runs (N and a few); the difference of the total instruction counts divided by the
difference of N is the cost of one request, start-up and shutdown cancelled out. Hash
randomisation is off (PYTHONHASHSEED=0): set and dict orders move the count by a few percent.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BODY = b"x" * 200
SCRIPT = "def request(flow):\n    pass\n"  # the empty request hook of --load hook


def _mix(upstream: int) -> list[str]:
    """The README's 10 rules: 3 -H on requests (two fields added, Accept removed), 3 on
    responses (three fields added), and 4 -M of which one rewrites the path."""
    return [
        *_headers()[:3], *_headers()[5:8],
        *_remotes(upstream)[6:],
    ]  # fmt: skip


def _headers() -> list[str]:
    """10 -H: 5 on requests (four added, Accept removed), 5 on responses (three added, two
    under a filter on the URL or the host: one applies, one does not)."""
    return [
        "/~q/X-Client-Id/bench", "/~q/X-Debug/1", "/~q/Accept/",
        "/~q/Authorization/Bearer token", "/~q/X-Trace/on",
        "/~s/X-Proxied/yes", "/~s/Cache-Control/no-store", "/~s/X-Frame-Options/DENY",
        "/~s & ~u small/X-Small/1", "/~s & ~d api.example.com/X-Api/1",
    ]  # fmt: skip


def _remotes(upstream: int) -> list[str]:
    """10 -M: eight for other hosts (four under a host filter), two for this one, of which
    one rewrites the path."""
    local = f"127.0.0.1:{upstream}"
    other = [f"|//api{i}.example.com/|//{local}/api{i}/" for i in range(4)]
    other += [f"|~d cdn{i}.example.com|//cdn{i}.example.com/|//{local}/cdn{i}/" for i in range(4)]
    return [*other, f"|//{local}/nowhere|//{local}/elsewhere", f"|//{local}/small|//{local}/mapped"]


def _load_args(load: str, upstream: int, workdir: Path) -> list[str]:
    """The proxy options of one named load (see LOADS)."""
    if load == "hook":
        script = workdir / "empty_hook.py"
        script.write_text(SCRIPT)
        return ["-s", str(script)]
    rules = {"mix": _mix, "headers": lambda _: _headers(), "remotes": _remotes}
    if load not in rules:
        return []
    # -H patterns here start with "/", -M ones with "|"
    return [arg for r in rules[load](upstream) for arg in ("-H" if r[0] == "/" else "-M", r)]


LOADS = {
    "none": "no rules, no addons",
    "hook": "an addon with an empty request hook",
    "mix": "10 rules: 6 -H (3 on requests, 3 on responses) and 4 -M",
    "headers": "10 -H rules",
    "remotes": "10 -M rules",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


def _read_response(sock: socket.socket | ssl.SSLSocket, buf: bytearray) -> None:
    """Read one response with a Content-Length body from ``sock`` (leftovers stay in buf)."""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    buf[:] = rest[length:]


def _client(port: int, upstream: int, count: int, tls: bool) -> None:
    sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port))
    host = f"127.0.0.1:{upstream}"
    if tls:  # the proxy's own certificate is not checked: this measures, it does not test
        sock.sendall(f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(4096)
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    target = "/small" if tls else f"http://{host}/small"
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode()
    buf = bytearray()
    for _ in range(count):
        sock.sendall(request)
        _read_response(sock, buf)
    sock.close()


def _instructions(
    src: Path, count: int, tls: bool, upstream: int, workdir: Path, extra: list[str]
) -> int:
    out = workdir / f"callgrind.{count}.out"
    env = dict(os.environ, PYTHONPATH=str(src), INSPECTOR_LOOP="asyncio", PYTHONHASHSEED="0")
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "inspector", "dump", "-q", "--listen-port", "0",
        "--confdir", str(workdir / "conf"), "--session", str(workdir / f"s{count}.db"),
        "--insecure", *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    port = _listening_port(proc)
    _client(port, upstream, count, tls)
    time.sleep(1.0)  # let the store's writer take the last flows
    proc.send_signal(signal.SIGINT)
    proc.wait(120)
    totals = re.search(r"^totals:\s+(\d+)", out.read_text(), re.M)
    if totals is None:
        raise RuntimeError(f"no totals line in {out}")
    return int(totals.group(1))


def _listening_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stderr is not None
    deadline = time.monotonic() + 120  # valgrind starts Python slowly
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"proxy listening on http://[^:]+:(\d+)", line)
        if match:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep it drained
            return int(match.group(1))
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("the proxy did not print its listening line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--tls", action="store_true", help="intercepted HTTPS through CONNECT")
    parser.add_argument(
        "--load", choices=LOADS, default="none",
        help="rules or addons loaded: " + "; ".join(f"{k}: {v}" for k, v in LOADS.items()),
    )  # fmt: skip
    parser.add_argument(
        "--proxy-arg", action="append", default=[], metavar="ARG",
        help="one more option for the proxy (repeat it; --proxy-arg=-H --proxy-arg=/X/1)",
    )  # fmt: skip
    parser.add_argument(
        "--keep", type=Path, help="keep the callgrind output files in this directory"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("needs valgrind (apt-get install valgrind)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if args.tls:  # the upstream speaks TLS too (not verified: the proxy runs --insecure)
        import trustme

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        trustme.CA().issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = server.server_address[1]
    few = 10
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        extra = _load_args(args.load, upstream, work) + args.proxy_arg
        small = _instructions(args.src, few, args.tls, upstream, work, extra)
        large = _instructions(args.src, args.requests, args.tls, upstream, work, extra)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for out in work.glob("callgrind.*.out"):
                shutil.copy(out, args.keep / out.name)
    per = (large - small) / (args.requests - few)
    kind = "intercepted HTTPS" if args.tls else "plain HTTP"
    print(f"{args.src}: {per / 1e6:.3f} M instructions per request ({kind}, {LOADS[args.load]})")
    server.shutdown()


if __name__ == "__main__":
    main()
