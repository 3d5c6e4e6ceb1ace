"""Export writers on recorded flows: curl run for real, raw bytes, HAR 1.2, redaction."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.export.curl import curl_command, needs_body_file, printf_format, quote_arg
from inspector.export.har import flows_from_har, har_document
from inspector.export.pytest_module import pytest_module
from inspector.export.raw import raw_exchange
from inspector.export.redact import MASK, redact_flow
from inspector.flow import FlowError, Phase
from tests.conftest import NO_CURL
from tests.replay_fixtures import body, check_har, make_flow, visible_headers

# --- curl -----------------------------------------------------------------------------------

# The exported commands must run under POSIX sh, not only bash: dash where it is installed.
POSIX_SH = shutil.which("dash") or "sh"


def _run_curl(command: str, cwd=None) -> subprocess.CompletedProcess:
    if shutil.which("curl") is None:
        pytest.skip(NO_CURL)
    return subprocess.run(
        [POSIX_SH, "-c", command + " -s -o /dev/null -w '%{http_code}'"],
        capture_output=True,
        timeout=30,
        cwd=cwd,
    )


def _curl_cases(host: str, port: int) -> list:
    return [
        make_flow(
            host, port, "GET", "/echo?a=1&b=two", [(b"User-Agent", b"ua/1"), (b"X-Case", b"MiXeD")]
        ),
        make_flow(
            host,
            port,
            "POST",
            "/echo",
            [
                (b"Content-Type", b"application/json"),
                (b"Content-Length", b"13"),
                (b"X-Trace", b"1"),
            ],
            b'{"a": "b c"}\n',
        ),
        make_flow(
            host,
            port,
            "PUT",
            "/echo",
            [(b"X-Quote", b'it\'s "quoted" $HOME `x` \\')],
            b"@not-a-file",
        ),
        make_flow(host, port, "DELETE", "/echo/[1]{2}", [(b"X-Empty", b""), (b"Accept", b"*/*")]),
        make_flow(
            host, port, "GET", "/echo", [(b"X-Latin", b"caf\xe9 \x7f tab\there")], b"a body on GET"
        ),
        make_flow(host, port, "HEAD", "/echo", []),
        make_flow(
            host,
            port,
            "PATCH",
            "/echo",
            [(b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain")],
            b"line1\nline2\r\n\ttabbed 'quote'",
        ),
    ]


def test_curl_commands_reproduce_requests_exactly(echo_server):
    for flow in _curl_cases(echo_server.host, echo_server.port):
        before = len(echo_server.received)
        result = _run_curl(curl_command(flow))
        assert result.returncode == 0, result.stderr
        got = echo_server.received[before]
        req = flow.request
        assert got.method == req.method
        assert got.path == req.path
        expected = [
            (n.decode("latin-1"), v.decode("latin-1"))
            for n, v in req.headers
            if n.lower() not in (b"content-length", b"transfer-encoding")
        ]
        assert visible_headers(got.headers, ("content-length",)) == expected
        assert got.body == req.body.data
        lengths = [v for n, v in got.headers if n.lower() == "content-length"]
        assert lengths == ([str(len(req.body.data))] if req.body.data else [])


def test_curl_uses_x_only_when_needed():
    assert " -X " not in curl_command(make_flow("h", 80, "GET", "/"))
    assert " -X " not in curl_command(make_flow("h", 80, "POST", "/", request_body=b"x"))
    assert "-X POST" in curl_command(make_flow("h", 80, "POST", "/"))
    assert "-X GET" in curl_command(make_flow("h", 80, "GET", "/", request_body=b"x"))
    assert "--head" in curl_command(make_flow("h", 80, "HEAD", "/"))
    command = curl_command(make_flow("h", 80))
    assert "--http1.1" in command
    assert "--compressed" not in command


def test_curl_binary_body_from_file_and_inline_nul(echo_server, tmp_path):
    data = bytes(range(256)) * 40
    assert needs_body_file(data)
    flow = make_flow(echo_server.host, echo_server.port, "POST", "/echo", [], data)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    command = curl_command(flow, body_file=str(path))
    assert f"@{path}" in command
    assert _run_curl(command).returncode == 0
    assert echo_server.received[-1].body == data
    # Without a file the NUL-holding body is piped in through printf and still arrives whole.
    result = _run_curl(curl_command(flow))
    assert result.returncode == 0, result.stderr
    assert echo_server.received[-1].body == data


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=40))
def test_quote_arg_round_trips_through_posix_sh(data):
    # Arguments never hold NUL or end in a newline (headers, URLs, methods).
    data = data.replace(b"\x00", b"").rstrip(b"\n")
    out = subprocess.run(
        [POSIX_SH, "-c", f"printf %s {quote_arg(data)}"], capture_output=True, timeout=10
    )
    assert out.stdout == data
    assert not quote_arg(data).startswith("$'")  # no bash-only ANSI-C quoting


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=60))
def test_printf_format_prints_any_bytes_under_posix_sh(data):
    out = subprocess.run(
        [POSIX_SH, "-c", f"printf {printf_format(data)}"], capture_output=True, timeout=10
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == data


def test_bodies_of_every_kind_reach_the_server_under_posix_sh(echo_server):
    bodies = [
        b"line1\nline2\n",  # the newline that bash-only $'...' quoting sent wrong
        b"tab\there 'quoted' $HOME `cmd` \\ %s %%",
        b"crlf\r\nand esc \x1b[0m",
        b"-starts with a dash\x01",
        b"nul\x00inside\x00",
        "caf\u00e9 \u2713".encode(),
        b"@looks-like-a-file",
        b"ends with newlines\n\n",
    ]
    for data in bodies:
        flow = make_flow(echo_server.host, echo_server.port, "POST", "/echo", [], data)
        command = curl_command(flow)
        assert "$'" not in command and "base64" not in command
        result = _run_curl(command)
        assert result.returncode == 0, (data, result.stderr)
        assert echo_server.received[-1].body == data


# --- raw ------------------------------------------------------------------------------------


def test_raw_exchange_is_dechunked_http():
    flow = make_flow(
        "127.0.0.1",
        8000,
        "POST",
        "/up?x=1",
        [(b"Transfer-Encoding", b"chunked"), (b"X-A", b"1")],
        b"chunky body",
        response_headers=[(b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain")],
        response_body=b"answer",
    )
    raw = raw_exchange(flow)
    request_part, response_part = raw.split(b"### response 200 OK\r\n")
    assert request_part.startswith(b"### request POST http://127.0.0.1:8000/up?x=1")
    head, _, rest = request_part.split(b"\r\n", 1)[1].partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /up?x=1 HTTP/1.1",
        b"Host: 127.0.0.1:8000",
        b"X-A: 1",
        b"Content-Length: 11",
    ]
    assert rest == b"chunky body\r\n"
    rhead, _, rbody = response_part.partition(b"\r\n\r\n")
    assert rhead.split(b"\r\n") == [
        b"HTTP/1.1 200 OK",
        b"Content-Type: text/plain",
        b"Content-Length: 6",
    ]
    assert rbody == b"answer\r\n"


def test_raw_notes_truncation_and_errors():
    flow = make_flow("h", 80, status=None)
    raw = raw_exchange(flow)
    assert b"### error in connect: ConnectionRefusedError" in raw
    flow = make_flow("h", 80)
    flow.response.body = body(b"abc", size=5000)
    assert b"### body truncated: 3 B of 5.0 kB recorded" in raw_exchange(flow)


# --- HAR ------------------------------------------------------------------------------------


def _har_flows() -> list:
    binary = bytes(range(256))
    ok = make_flow(
        "127.0.0.1",
        9000,
        "POST",
        "/api/items?page=2&q=a%20b",
        [
            (b"Content-Type", b"application/x-www-form-urlencoded"),
            (b"Cookie", b"a=1; b=2"),
        ],
        b"name=x&qty=3",
        response_headers=[
            (b"Content-Type", b"image/png"),
            (b"Set-Cookie", b"sid=abc; Path=/; HttpOnly"),
            (b"Location", b"/next"),
        ],
        response_body=binary,
    )
    failed = make_flow("127.0.0.1", 9, status=None)
    cut = make_flow("example.com", 443, scheme="https", response_body=b"x" * 10)
    cut.response.body = body(b"x" * 10, size=100)
    cut.timings.connect_start = None
    cut.timings.connect_end = None
    return [ok, failed, cut]


def test_har_document_has_every_required_field():
    flows = _har_flows()
    doc = json.loads(json.dumps(har_document(flows)))
    check_har(doc)
    ok, failed, cut = doc["log"]["entries"]
    assert ok["request"]["queryString"] == [
        {"name": "page", "value": "2"},
        {"name": "q", "value": "a b"},
    ]
    assert ok["request"]["cookies"] == [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    assert ok["request"]["postData"]["params"][1] == {"name": "qty", "value": "3"}
    content = ok["response"]["content"]
    assert content["encoding"] == "base64"
    assert base64.b64decode(content["text"]) == bytes(range(256))
    assert ok["response"]["cookies"][0]["name"] == "sid"
    assert ok["response"]["cookies"][0]["httpOnly"] is True
    assert ok["response"]["redirectURL"] == "/next"
    assert ok["timings"]["dns"] == -1
    assert ok["timings"]["connect"] >= 0
    assert failed["response"]["status"] == 0
    assert failed["_error"]["class"] == "ConnectionRefusedError"
    assert "response body truncated" in cut["comment"]
    assert cut["timings"]["connect"] == -1
    assert cut["request"]["url"] == "https://example.com/"


def test_har_round_trip_keeps_the_exchanges():
    flows = _har_flows()
    back = flows_from_har(json.loads(json.dumps(har_document(flows))))
    assert len(back) == len(flows)
    for a, b in zip(flows, back, strict=True):
        assert b.id == a.id
        assert (b.request.method, b.request.url) == (a.request.method, a.request.url)
        assert b.request.headers == a.request.headers
        assert b.request.body.data == a.request.body.data
        assert (a.response is None) == (b.response is None)
        if a.response is not None and not a.response.body.truncated:
            assert b.response.status_code == a.response.status_code
            assert b.response.headers == a.response.headers
            assert b.response.body.data == a.response.body.data
    assert back[1].error.exc_class == "ConnectionRefusedError"
    cut = back[2].response.body
    assert (cut.data, cut.size, cut.truncated) == (b"x" * 10, 100, True)


MALFORMED = [
    ("[]", 'the top level must be an object with a "log" object'),
    ('{"log": {}}', '"log.entries" is missing or not a list'),
    ('{"log": {"entries": [5]}}', "entry 0: is not an object"),
    ('{"log": {"entries": [{"request": {}}]}}', "entry 0: startedDateTime is missing"),
    (
        '{"log": {"entries": [{"startedDateTime": "yesterday"}]}}',
        "entry 0: startedDateTime is not an ISO 8601 date",
    ),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_har_documents(text, message):
    from inspector.export.har import HarError

    with pytest.raises(HarError, match=message.replace("(", r"\(")):
        flows_from_har(json.loads(text))


# --- redaction ------------------------------------------------------------------------------

SECRETS = (b"s3cr3t-bearer", b"cookieval", b"setcookieval", b"key-123", b"qtoken", b"pw-xyz")


def _secret_flow():
    return make_flow(
        "127.0.0.1",
        9000,
        "POST",
        "/login?user=bob&access_token=qtoken",
        [
            (b"Authorization", b"Bearer s3cr3t-bearer"),
            (b"Cookie", b"session=cookieval; theme=dark"),
            (b"X-Api-Key", b"key-123"),
            (b"Content-Type", b"application/json"),
            (b"Content-Length", b"44"),
        ],
        b'{"user": "bob", "password": "pw-xyz", "n": 1}',
        response_headers=[(b"Set-Cookie", b"sid=setcookieval; Path=/"), (b"X-Kept", b"yes")],
        response_body=b"ok",
    )


def test_redact_flow_masks_credentials_and_keeps_the_rest():
    flow = _secret_flow()
    red = redact_flow(flow)
    assert flow.request.header("authorization") == "Bearer s3cr3t-bearer"  # original untouched
    assert red.request.header("authorization") == f"Bearer {MASK}"
    assert red.request.header("cookie") == f"session={MASK}; theme={MASK}"
    assert red.request.header("x-api-key") == MASK
    assert red.request.path == f"/login?user=bob&access_token={MASK}"
    assert json.loads(red.request.body.data) == {"user": "bob", "password": MASK, "n": 1}
    assert red.request.header("content-length") == str(len(red.request.body.data))
    assert red.response.header("set-cookie") == f"sid={MASK}; Path=/"
    assert red.response.header("x-kept") == "yes"


@pytest.mark.parametrize("fmt", ["har", "curl", "raw", "pytest"])
def test_redaction_in_every_format(fmt):
    flow = _secret_flow()
    if fmt == "har":
        out = json.dumps(har_document([flow], redact=True)).encode()
        plain = json.dumps(har_document([flow])).encode()
    elif fmt == "curl":
        out, plain = curl_command(flow, redact=True).encode(), curl_command(flow).encode()
    elif fmt == "raw":
        out, plain = raw_exchange(flow, redact=True), raw_exchange(flow)
    else:
        out, plain = pytest_module([flow], redact=True).encode(), pytest_module([flow]).encode()
    for secret in SECRETS:
        if fmt in ("curl", "pytest") and secret == b"setcookieval":
            continue  # these hold no response headers
        assert secret in plain
        assert secret not in out
    assert MASK.encode() in out
    assert b"theme" in out and b"bob" in out


def test_pytest_module_is_valid_python_and_lists_what_it_leaves_out():
    flows = [make_flow("127.0.0.1", 9000), make_flow("127.0.0.1", 9000, status=None)]
    cut = make_flow("127.0.0.1", 9000, "POST", request_body=b"abc")
    cut.request.body = body(b"abc", size=10_000)
    # A response that started, then broke: no recording of what the server does.
    broken = make_flow("127.0.0.1", 9000, path="/broken")
    broken.error = FlowError("IncompleteRead", "IncompleteRead(5 bytes read)", Phase.BODY)
    source = pytest_module([*flows, cut, broken])
    compile(source, "generated.py", "exec")
    assert source.count("# left out:") == 3
    assert "the exchange failed: ConnectionRefusedError during connect" in source
    assert "request body was cut at capture" in source
    assert "/broken: the exchange failed: IncompleteRead during body" in source


_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NAMES = st.text(_TOKEN_CHARS, min_size=1, max_size=10)
_VALUE_BYTES = st.binary(max_size=30).map(
    lambda b: bytes(c for c in b if c not in (0, 10, 13)).strip(b" \t")
)


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "M-SEARCH"]),
    path=st.text(alphabet="abc/%?=&;+:@!$'()*,~-._", max_size=20).map(lambda p: "/" + p),
    headers=st.lists(
        st.tuples(st.text(_TOKEN_CHARS, min_size=1, max_size=10), _VALUE_BYTES), max_size=6
    ),
    request_body=st.binary(max_size=200),
    response_body=st.binary(max_size=200) | st.text(max_size=100).map(str.encode),
    status=st.integers(100, 599),
)
def test_har_round_trip_property(method, path, headers, request_body, response_body, status):
    fields = [(n.encode(), v) for n, v in headers]
    flow = make_flow(
        "127.0.0.1",
        8080,
        method,
        path,
        fields,
        request_body,
        status=status,
        response_headers=fields,
        response_body=response_body,
    )
    doc = json.loads(json.dumps(har_document([flow])))
    check_har(doc)
    (back,) = flows_from_har(doc)
    assert (back.request.method, back.request.path) == (method, path)
    assert back.request.headers == flow.request.headers
    assert back.request.body.data == request_body
    assert back.response.status_code == status
    assert back.response.headers == fields
    assert back.response.body.data == response_body
