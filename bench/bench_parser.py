"""Parser throughput: our sans-IO Connection vs h11 vs http.client, on one corpus.

Run:  PYTHONPATH=. python bench/bench_parser.py [--repeat 9] [--seconds 0.2]

Each case parses complete messages (head, body, end) fed as they would come off
one socket read, on a fresh connection per message (each side sends its request
first, so the client's send path is included). Figures are medians over the
repetitions; the ratios are medians of per-repetition ratios.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import sys
import time
from collections.abc import Callable

import h11

from protocol.connection import CLIENT, SERVER, Connection
from protocol.events import NEED_DATA, Data, EndOfMessage, Request
from protocol.headers import Headers


def _response(headers: list[tuple[str, str]], body: bytes, chunked: bool = False) -> bytes:
    lines = [b"HTTP/1.1 200 OK"]
    lines += [f"{n}: {v}".encode() for n, v in headers]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        step = 1000
        payload = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
            for i in range(0, len(body), step)
        )
        payload += b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}".encode())
        payload = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


_TYPICAL = [
    ("Date", "Thu, 26 Nov 2026 07:00:00 GMT"),
    ("Server", "nginx/1.24.0"),
    ("Content-Type", "application/json; charset=utf-8"),
    ("Connection", "keep-alive"),
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("X-Request-Id", "5f2b1c9e-8a44-4c1e-b0e4-2f1d7c3a9b10"),
    ("Vary", "Accept-Encoding"),
]
_JSON = json.dumps({"id": 42, "name": "widget", "tags": ["a", "b"], "price": 9.5}).encode()

RESPONSES = {
    "small json, 8 headers": _response(_TYPICAL, _JSON),
    "chunked 10 kB": _response(_TYPICAL, b"z" * 10_000, chunked=True),
    "40 headers": _response(
        _TYPICAL + [(f"X-Header-{i}", f"value number {i} " * 2) for i in range(32)], _JSON
    ),
    "64 KiB body": _response(_TYPICAL, b"b" * 65536),
}

REQUESTS = {
    "GET, 7 headers": (
        b"GET /api/items?page=2 HTTP/1.1\r\nHost: example.com\r\n"
        b"User-Agent: curl/8.5.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
        b"Accept-Language: en-US,en;q=0.9\r\nCookie: session=abcdef0123456789\r\n"
        b"Connection: keep-alive\r\n\r\n"
    ),
    "POST json": (
        b"POST /api/items HTTP/1.1\r\nHost: example.com\r\nUser-Agent: python-requests/2.31\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_JSON), _JSON)
    ),
}


# ---------------------------------------------------------------- parsers


def ours_response(raw: bytes) -> int:
    conn = Connection(CLIENT)
    conn.send(Request(b"GET", b"/", Headers([(b"Host", b"example.com")])))
    conn.send(EndOfMessage())
    conn.receive_data(raw)
    size = 0
    while True:
        event = conn.next_event()
        if type(event) is Data:
            size += len(event.data)
        elif type(event) is EndOfMessage:
            return size
        elif event is NEED_DATA:
            raise AssertionError("incomplete message in corpus")


def h11_response(raw: bytes) -> int:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "example.com")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    size = 0
    while True:
        event = conn.next_event()
        if type(event) is h11.Data:
            size += len(event.data)
        elif type(event) is h11.EndOfMessage:
            return size
        elif event is h11.NEED_DATA:
            raise AssertionError("incomplete message in corpus")


class _FakeSocket:
    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._raw))


def stdlib_response(raw: bytes) -> int:
    response = http.client.HTTPResponse(_FakeSocket(raw), method="GET")  # type: ignore[arg-type]
    response.begin()
    return len(response.read())


def ours_request(raw: bytes) -> int:
    conn = Connection(SERVER)
    conn.receive_data(raw)
    size = 0
    while True:
        event = conn.next_event()
        if type(event) is Data:
            size += len(event.data)
        elif type(event) is EndOfMessage:
            return size


def h11_request(raw: bytes) -> int:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    size = 0
    while True:
        event = conn.next_event()
        if type(event) is h11.Data:
            size += len(event.data)
        elif type(event) is h11.EndOfMessage:
            return size


# ---------------------------------------------------------------- measuring


def _rate_once(parse: Callable[[bytes], int], raw: bytes, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            parse(raw)
        n += 20
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def rates(
    parsers: list[Callable[[bytes], int]], raw: bytes, seconds: float, repeat: int
) -> tuple[list[float], list[float]]:
    """Median messages/second of each parser, and the median ratio of the first to each.

    The parsers take turns within every repetition, so a burst of load from other
    processes hits all of them alike and the per-repetition ratios stay honest.
    """
    runs: list[list[float]] = [[] for _ in parsers]
    for _ in range(repeat):
        for i, parse in enumerate(parsers):
            runs[i].append(_rate_once(parse, raw, seconds))
    medians = [statistics.median(r) for r in runs]
    ratios = [statistics.median(a / b for a, b in zip(runs[0], r, strict=True)) for r in runs]
    return medians, ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.2)
    args = parser.parse_args(argv)

    print(
        f"{'case':<28}{'ours msg/s':>12}{'h11 msg/s':>12}{'stdlib msg/s':>14}"
        f"{'vs h11':>8}{'vs stdlib':>11}{'us/msg':>8}"
    )
    for name, raw in RESPONSES.items():
        assert ours_response(raw) == h11_response(raw) == stdlib_response(raw)
        parsers = [ours_response, h11_response, stdlib_response]
        (ours, theirs, std), (_, vs_h11, vs_std) = rates(parsers, raw, args.seconds, args.repeat)
        print(
            f"{'resp: ' + name:<28}{ours:>12,.0f}{theirs:>12,.0f}{std:>14,.0f}"
            f"{vs_h11:>7.1f}x{vs_std:>10.1f}x{1e6 / ours:>8.1f}"
        )
    for name, raw in REQUESTS.items():
        assert ours_request(raw) == h11_request(raw)
        parsers = [ours_request, h11_request]
        (ours, theirs), (_, vs_h11) = rates(parsers, raw, args.seconds, args.repeat)
        print(
            f"{'req: ' + name:<28}{ours:>12,.0f}{theirs:>12,.0f}{'-':>14}"
            f"{vs_h11:>7.1f}x{'-':>10}{1e6 / ours:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
