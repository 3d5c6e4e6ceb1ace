"""Exposure and secrets: where the proxy listens, who may use it, the CA key, upstream
verification, and that credentials never leak into logs or error pages.

Every proxy here is the real ``inspector dump`` subprocess; clients are curl and requests
over loopback. The 0.0.0.0 case only binds: nothing is sent from outside loopback.
"""

from __future__ import annotations

import base64
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from inspector.store import Store
from tests.conftest import needs_ipv6, run_curl
from tests.proxy_process import ProxyProcess
from tests.servers import EchoServer, RawServer, read_request_head

SECRET_TOKEN = "SECRET123"
SECRET_COOKIE = "SECRET456"
PROXY_USER, PROXY_PASS = "alice", "pa55-w0rd"


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    """curl printing the status code last; never follows env proxies or reads ~/.curlrc."""
    return run_curl("-o", "/dev/null", "-D", "-", "-w", "%{http_code}", *args, text=True)


def curl_status(result: subprocess.CompletedProcess[str]) -> int:
    return int(result.stdout[-3:])


def no_env_session(proxy_url: str | None = None) -> requests.Session:
    """A requests session that ignores HTTP(S)_PROXY from the environment."""
    session = requests.Session()
    session.trust_env = False
    if proxy_url is not None:
        session.proxies = {"http": proxy_url, "https": proxy_url}
    return session


def wait_serving(proxy: ProxyProcess) -> None:
    """Return once the proxy answers a request (a cheap 400, or 407 when auth is on)."""
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(b"OPTIONS * HTTP/1.1\r\nHost: probe\r\n\r\n")  # cheap 400/407, not recorded
        assert s.recv(64).startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 407 "))


def stop(proxy: ProxyProcess, timeout: float = 15.0) -> tuple[str, str]:
    """SIGINT the proxy, expect a clean exit, and return (stdout, whole stderr).

    The probe first, so every test also shows the proxy still serving at its end.
    """
    wait_serving(proxy)
    out, err = proxy.stop(signal.SIGINT, timeout)
    assert proxy.proc.returncode == 0, err
    return out, err


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ProxyProcess]]:
    """Proxies a test starts are stopped even when it fails."""
    procs: list[ProxyProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


def start(started: list[ProxyProcess], tmp: Path, *args: str) -> ProxyProcess:
    proxy = ProxyProcess(tmp, *args)
    started.append(proxy)
    return proxy


# --- where it listens ----------------------------------------------------------------------


def test_default_listen_address_is_loopback_without_warning(
    tmp_path: Path, started: list[ProxyProcess]
) -> None:
    proxy = start(started, tmp_path)
    assert proxy.host == "127.0.0.1"
    _, err = stop(proxy)
    assert "inspector: proxy listening on http://127.0.0.1:" in err
    assert "warning" not in err.lower()


@pytest.mark.parametrize(
    ("any_address", "via"),
    [("0.0.0.0", "127.0.0.1"), pytest.param("::", "[::1]", marks=needs_ipv6)],
    ids=["ipv4-any", "ipv6-any"],
)
def test_listening_on_all_interfaces_warns_and_suggests_proxy_auth(
    tmp_path: Path, started: list[ProxyProcess], echo_server: EchoServer, any_address: str,
    via: str,
) -> None:  # fmt: skip
    proxy = start(started, tmp_path, "--listen-host", any_address)
    assert proxy.host == any_address
    # Only bound: the test reaches it through loopback.
    result = curl("-x", f"http://{via}:{proxy.port}", f"{echo_server.url}/status/200")
    assert curl_status(result) == 200
    _, err = stop(proxy)
    warning = next(line for line in err.splitlines() if "warning" in line)
    assert f"listening on {any_address}," in warning and "not loopback" in warning
    assert "anyone who can reach" in warning  # reachable from other machines
    assert "--proxy-auth" in warning


@pytest.mark.parametrize(
    "loopback", ["localhost", "127.0.0.2", pytest.param("::1", marks=needs_ipv6)]
)
def test_other_loopback_addresses_do_not_warn(
    tmp_path: Path, started: list[ProxyProcess], loopback: str
) -> None:
    proxy = start(started, tmp_path, "--listen-host", loopback)
    _, err = stop(proxy)
    assert "warning" not in err.lower()


# --- proxy authentication ------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_upstream() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    proxy = ProxyProcess(
        tmp_path_factory.mktemp("auth"), "--proxy-auth", f"{PROXY_USER}:{PROXY_PASS}"
    )
    yield proxy
    proxy.stop()


def test_proxy_auth_without_credentials_is_407_curl(
    auth_proxy: ProxyProcess, auth_upstream: EchoServer
) -> None:
    before = len(auth_upstream.received)
    result = curl("-x", auth_proxy.url, f"{auth_upstream.url}/status/200")
    assert curl_status(result) == 407
    assert "proxy-authenticate: basic realm=" in result.stdout.lower()
    assert len(auth_upstream.received) == before


def test_proxy_auth_without_credentials_is_407_requests(
    auth_proxy: ProxyProcess, auth_upstream: EchoServer
) -> None:
    with no_env_session(auth_proxy.url) as session:
        r = session.get(f"{auth_upstream.url}/status/200", timeout=15)
    assert r.status_code == 407
    assert r.headers["Proxy-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    "user_pass", [f"{PROXY_USER}:wrong", f"mallory:{PROXY_PASS}", f"{PROXY_USER}:", "garbage"]
)
def test_proxy_auth_with_wrong_credentials_is_407(
    auth_proxy: ProxyProcess, auth_upstream: EchoServer, user_pass: str
) -> None:
    before = len(auth_upstream.received)
    result = curl("-x", auth_proxy.url, "--proxy-user", user_pass, f"{auth_upstream.url}/")
    assert curl_status(result) == 407
    assert len(auth_upstream.received) == before


def test_proxy_auth_not_basic_is_407(auth_proxy: ProxyProcess, auth_upstream: EchoServer) -> None:
    result = curl(
        "-x", auth_proxy.url, "-H", "Proxy-Authorization: Bearer abc", f"{auth_upstream.url}/"
    )
    assert curl_status(result) == 407


def test_proxy_auth_right_credentials_curl_and_upstream_never_sees_them(
    auth_proxy: ProxyProcess, auth_upstream: EchoServer
) -> None:
    before = len(auth_upstream.received)
    result = curl(
        "-x", auth_proxy.url, "--proxy-user", f"{PROXY_USER}:{PROXY_PASS}",
        f"{auth_upstream.url}/echo?via=curl",
    )  # fmt: skip
    assert curl_status(result) == 200
    (seen,) = auth_upstream.received[before:]
    assert seen.path == "/echo?via=curl"
    assert "proxy-authorization" not in {name.lower() for name, _ in seen.headers}


def test_proxy_auth_right_credentials_requests(
    auth_proxy: ProxyProcess, auth_upstream: EchoServer
) -> None:
    before = len(auth_upstream.received)
    url = f"http://{PROXY_USER}:{PROXY_PASS}@{auth_proxy.host}:{auth_proxy.port}"
    with no_env_session(url) as session:
        r = session.get(f"{auth_upstream.url}/echo?via=requests", timeout=15)
    assert r.status_code == 200
    names = {name.lower() for name, _ in r.json()["headers"]}
    assert "proxy-authorization" not in names
    assert all(
        "proxy-authorization" not in {n.lower() for n, _ in seen.headers}
        for seen in auth_upstream.received[before:]
    )


def test_proxy_auth_407_then_retry_on_the_same_connection(
    auth_proxy: ProxyProcess, auth_upstream: EchoServer
) -> None:
    """A 407 keeps the connection, so a client can retry on it with credentials."""

    token = base64.b64encode(f"{PROXY_USER}:{PROXY_PASS}".encode()).decode()
    target = f"{auth_upstream.url}/status/204"
    host = f"127.0.0.1:{auth_upstream.port}"
    with socket.create_connection((auth_proxy.host, auth_proxy.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        first = _read_head(s)
        s.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
            f"Proxy-Authorization: Basic {token}\r\nConnection: close\r\n\r\n".encode()
        )
        second = _read_head(s)
    assert first.startswith(b"HTTP/1.1 407 ")
    assert second.startswith(b"HTTP/1.1 204 ")


def _read_head(sock: socket.socket) -> bytes:
    """One response head plus its Content-Length body (enough for 407 and 204)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return head


def test_proxy_password_is_not_printed_or_recorded(
    tmp_path: Path, started: list[ProxyProcess], echo_server: EchoServer
) -> None:
    proxy = start(started, tmp_path, "--proxy-auth", f"{PROXY_USER}:{PROXY_PASS}")
    curl("-x", proxy.url, f"{echo_server.url}/")
    curl("-x", proxy.url, "--proxy-user", f"{PROXY_USER}:{PROXY_PASS}", f"{echo_server.url}/")
    wrong = f"http://{PROXY_USER}:hunter2-guess@{proxy.host}:{proxy.port}"
    with no_env_session(wrong) as session:
        refused = session.get(f"{echo_server.url}/", timeout=15)
    assert refused.status_code == 407
    guess_b64 = base64.b64encode(f"{PROXY_USER}:hunter2-guess".encode()).decode()
    for leak in ("hunter2-guess", guess_b64):  # a 407 does not echo the attempt back
        assert leak not in refused.text and leak not in str(refused.headers)
    out, err = stop(proxy)
    for leak in (PROXY_PASS, "hunter2-guess", guess_b64):
        assert leak not in out + err
    # Nor in the session: the proxy's credential is not part of the captured request.
    with Store(proxy.session, readonly=True) as store:
        flows = list(store.iter_flows())
    assert flows and all(
        name.lower() != b"proxy-authorization" for f in flows for name, _ in f.request.headers
    )


# --- the CA key ----------------------------------------------------------------------------


def test_first_run_creates_private_ca_key_in_private_confdir(
    tmp_path: Path, started: list[ProxyProcess]
) -> None:
    proxy = start(started, tmp_path)
    stop(proxy)
    confdir = tmp_path / "conf"
    key = confdir / "ca-key.pem"
    assert stat.S_IMODE(confdir.stat().st_mode) == 0o700
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (confdir / "ca.pem").is_file()


def test_ca_command_prints_the_certificate_never_the_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "inspector", "ca", "--confdir", str(tmp_path / "conf")],
        capture_output=True, text=True, timeout=30, check=False,
        cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "BEGIN CERTIFICATE" in result.stdout
    key = (tmp_path / "conf" / "ca-key.pem").read_text()
    body = "".join(key.splitlines()[1:-1])
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    assert body[:40] not in result.stdout.replace("\n", "")


def _run_dump(confdir: Path, session: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", "dump", "--listen-port", "0",
         "--confdir", str(confdir), "--session", str(session)],
        capture_output=True, text=True, timeout=30, check=False,
        cwd=Path(__file__).parents[1],
    )  # fmt: skip


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_refuses_to_start_with_a_readable_ca_key(
    tmp_path: Path, started: list[ProxyProcess], mode: int
) -> None:
    stop(start(started, tmp_path))  # first run creates the CA
    key = tmp_path / "conf" / "ca-key.pem"
    key.chmod(mode)
    result = _run_dump(tmp_path / "conf", tmp_path / "again.db")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"chmod 600 {key}" in result.stderr
    assert "proxy listening" not in result.stderr
    key.chmod(0o600)
    stop(start(started, tmp_path))  # fixed as told: starts again


# --- upstream certificate verification -----------------------------------------------------


def _https_get(proxy: ProxyProcess, url: str) -> requests.Response:
    """GET an https URL through the intercepting proxy, trusting the proxy's own CA."""
    with no_env_session(proxy.url) as session:
        return session.get(url, timeout=20, verify=str(proxy.confdir / "ca.pem"))


def test_upstream_verification_is_on_by_default(
    tmp_path: Path, started: list[ProxyProcess], tls_echo_server: EchoServer
) -> None:
    proxy = start(started, tmp_path)
    r = _https_get(proxy, f"{tls_echo_server.url}/status/200")
    assert r.status_code == 502
    assert "SSL" in r.text
    assert tls_echo_server.received == []
    out, err = stop(proxy)
    line = next(line for line in out.splitlines() if "ERROR" in line)
    assert "SSL" in line.split("ERROR", 1)[1].split(":", 1)[0]  # the class names SSL
    with Store(proxy.session, readonly=True) as store:
        (flow,) = list(store.iter_flows())
    assert flow.error is not None and "SSL" in flow.error.exc_class
    assert "warning" not in err.lower()


def test_upstream_ca_makes_the_untrusted_upstream_work(
    tmp_path: Path,
    started: list[ProxyProcess],
    tls_echo_server: EchoServer,
    upstream_ca_file: Path,
) -> None:
    proxy = start(started, tmp_path, "--upstream-ca", str(upstream_ca_file))
    r = _https_get(proxy, f"{tls_echo_server.url}/status/200")
    assert r.status_code == 200 and r.text == "status 200\n"
    _, err = stop(proxy)
    assert "warning" not in err.lower()


def test_insecure_works_and_warns(
    tmp_path: Path, started: list[ProxyProcess], tls_echo_server: EchoServer
) -> None:
    proxy = start(started, tmp_path, "--insecure")
    r = _https_get(proxy, f"{tls_echo_server.url}/status/200")
    assert r.status_code == 200 and r.text == "status 200\n"
    _, err = stop(proxy)
    warning = next(line for line in err.splitlines() if "--insecure" in line)
    assert "warning" in warning and "not verified" in warning


# --- no secrets in logs or error pages -----------------------------------------------------

SECRET_HEADERS = ("-H", f"Authorization: Bearer {SECRET_TOKEN}", "-H", f"Cookie: s={SECRET_COOKIE}")


def test_dump_output_never_shows_request_secrets(
    tmp_path: Path, started: list[ProxyProcess], echo_server: EchoServer
) -> None:
    proxy = start(started, tmp_path)
    ok = curl("-x", proxy.url, *SECRET_HEADERS, f"{echo_server.url}/status/200")
    refused = curl("-x", proxy.url, *SECRET_HEADERS, "http://127.0.0.1:9/nothing")
    assert curl_status(ok) == 200 and curl_status(refused) == 502
    out, err = stop(proxy)
    assert f"GET {echo_server.url}/status/200 -> 200 OK" in out
    assert "GET http://127.0.0.1:9/nothing -> ERROR" in out
    for secret in (SECRET_TOKEN, SECRET_COOKIE):
        assert secret not in out and secret not in err
    # The session still records them: it is the user's own capture, not a log.
    with Store(proxy.session, readonly=True) as store:
        assert store.count() == 2


def test_error_pages_do_not_echo_request_headers(
    tmp_path: Path, started: list[ProxyProcess]
) -> None:
    proxy = start(started, tmp_path)
    with no_env_session(proxy.url) as session:
        r = session.get(
            "http://127.0.0.1:9/nothing",
            headers={"Authorization": f"Bearer {SECRET_TOKEN}", "Cookie": f"s={SECRET_COOKIE}"},
            timeout=15,
        )
    assert r.status_code == 502
    assert "ConnectionRefusedError" in r.text  # the body names the exception...
    for secret in (SECRET_TOKEN, SECRET_COOKIE):  # ...and nothing the client sent
        assert secret not in r.text
        assert all(secret not in v for v in r.headers.values())


def test_504_page_does_not_echo_request_headers(
    tmp_path: Path, started: list[ProxyProcess], raw_server: Callable[..., RawServer]
) -> None:
    def silent(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.recv(1)  # until the proxy gives up and closes

    upstream = raw_server(silent)
    proxy = start(started, tmp_path, "--read-timeout", "0.5")
    with no_env_session(proxy.url) as session:
        r = session.get(
            f"{upstream.url}/slow",
            headers={"Authorization": f"Bearer {SECRET_TOKEN}", "Cookie": f"s={SECRET_COOKIE}"},
            timeout=15,
        )
    assert r.status_code == 504
    assert "TimeoutError" in r.text  # the body names the exception, nothing the client sent
    for secret in (SECRET_TOKEN, SECRET_COOKIE):
        assert secret not in r.text and all(secret not in v for v in r.headers.values())
    out, err = stop(proxy)
    assert SECRET_TOKEN not in out + err and SECRET_COOKIE not in out + err


def test_400_page_does_not_echo_request_headers(
    tmp_path: Path, started: list[ProxyProcess], echo_server: EchoServer
) -> None:
    proxy = start(started, tmp_path)
    bad = (
        f"GET {echo_server.url}/ HTTP/1.1\r\nHost: 127.0.0.1:{echo_server.port}\r\n"
        f"Authorization: Bearer {SECRET_TOKEN}\r\nCookie: s={SECRET_COOKIE}\r\n"
        "X-Folded: a\r\n b\r\n\r\n"
    ).encode()
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(bad)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    for secret in (SECRET_TOKEN, SECRET_COOKIE):
        assert secret.encode() not in answer
    out, err = stop(proxy)
    assert SECRET_TOKEN not in out + err and SECRET_COOKIE not in out + err
