"""Client requests/second: protocol.HTTPConnection vs http.client, plus protocol.aio.

Run:  PYTHONPATH=. python bench/bench_client.py [--requests 5000] [--rounds 7]

A canned-response asyncio server runs in a separate process pinned (taskset) to
one core; the clients run pinned to the other. Every client does GET requests
over one keep-alive connection and reads each body whole. Rounds alternate
between the clients so load drift hits all of them alike; the figure is the
median requests/second over the rounds. The client's CPU time per request is
reported too: on a machine shared with other work it is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import protocol
from protocol.aio import AsyncHTTPConnection
from protocol.headers import Headers

BODY = b'{"id": 42, "name": "widget", "tags": ["a", "b"], "price": 9.5}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Thu, 26 Nov 2026 07:00:00 GMT\r\n"
    b"Server: bench\r\n"
    b"Content-Type: application/json\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Vary: Accept-Encoding\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY

SERVER_CODE = r"""
import asyncio, sys
RESPONSE = bytes.fromhex(sys.argv[1])

class Canned(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""
    def data_received(self, data):
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * n)

async def main():
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Canned, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def start_server(core: int | None) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-c", SERVER_CODE, RESPONSE.hex()]
    if core is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(core), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


Round = tuple[float, float]  # (requests/second, client CPU microseconds/request)


def timed(n: int, run: Callable[[], None]) -> Round:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1e6


def sync_round(module: object, port: int, n: int) -> Round:
    conn = module.HTTPConnection("127.0.0.1", port)  # type: ignore[attr-defined]

    def requests() -> None:
        for _ in range(n):
            conn.request("GET", "/json", headers={"User-Agent": "bench"})
            response = conn.getresponse()
            if response.read() != BODY:
                raise SystemExit("wrong body")

    result = timed(n, requests)
    conn.close()
    return result


def aio_round(port: int, n: int) -> Round:
    async def main() -> Round:
        conn = AsyncHTTPConnection("127.0.0.1", port)
        await conn.connect()
        headers = Headers([(b"Host", b"127.0.0.1:%d" % port), (b"User-Agent", b"bench")])
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await conn.send_request(b"GET", b"/json", headers)
            await conn.receive_response()
            if await conn.read_body() != BODY:
                raise SystemExit("wrong body")
            await conn.start_next_cycle()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await conn.close()
        return n / wall, cpu / n * 1e6

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    cores = sorted(os.sched_getaffinity(0))
    server_core = cores[-1] if len(cores) > 1 else None
    if server_core is not None:
        os.sched_setaffinity(0, {cores[0]})
    proc, port = start_server(server_core)
    try:
        clients: dict[str, Callable[[], Round]] = {
            "http.client": lambda: sync_round(http.client, port, args.requests),
            "protocol": lambda: sync_round(protocol, port, args.requests),
            "protocol.aio": lambda: aio_round(port, args.requests),
        }
        for run in clients.values():  # warm-up
            run()
        results: dict[str, list[Round]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, run in clients.items():
                results[name].append(run())
    finally:
        proc.terminate()
        proc.wait(5)

    rps = {name: statistics.median(r[0] for r in rounds) for name, rounds in results.items()}
    cpu = {name: statistics.median(r[1] for r in rounds) for name, rounds in results.items()}
    pinning = (
        f"server on core {server_core}, client on core {cores[0]}" if server_core else "unpinned"
    )
    print(f"{args.requests} keep-alive GETs per round, {args.rounds} rounds, {pinning}")
    for name in clients:
        print(f"  {name:<13} {rps[name]:>9,.0f} req/s   {cpu[name]:6.1f} us CPU/request")
    print(
        f"protocol.HTTPConnection / http.client.HTTPConnection: "
        f"{rps['protocol'] / rps['http.client']:.2f}x req/s, "
        f"{cpu['http.client'] / cpu['protocol']:.2f}x less CPU per request"
    )


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
