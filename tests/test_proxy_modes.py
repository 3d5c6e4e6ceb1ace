"""Reverse and upstream-proxy modes, and Basic proxy authentication."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import requests

from inspector.config import Mode
from tests.conftest import run_curl
from tests.proxy_fixtures import live_proxy
from tests.servers import EchoServer


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return run_curl(*args)


def test_reverse_mode_sends_everything_to_the_target(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    with live_proxy(tmp_path, mode=Mode.parse(f"reverse:{echo_server.url}")) as proxy:
        r = requests.get(f"{proxy.url}/echo?x=1", headers={"Host": "public.example"}, timeout=10)
        (flow,) = proxy.finished(1)
    echoed = r.json()
    assert echoed["path"] == "/echo?x=1"
    assert dict(echoed["headers"])["Host"] == f"127.0.0.1:{echo_server.port}"  # rewritten
    assert flow.request.url == f"{echo_server.url}/echo?x=1"
    assert flow.mode == f"reverse:{echo_server.url}"


def test_reverse_mode_to_a_tls_upstream(
    tmp_path: Path, tls_echo_server: EchoServer, upstream_ca_file: Path
) -> None:
    mode = Mode.parse(f"reverse:https://localhost:{tls_echo_server.port}")
    with live_proxy(tmp_path, mode=mode, upstream_ca=upstream_ca_file) as proxy:
        out = curl(f"{proxy.url}/status/203")
        (flow,) = proxy.finished(1)
    assert out.stdout == b"status 203\n"
    assert flow.request.scheme == "https" and flow.tls is not None
    assert flow.tls.sni is None and flow.tls.client_version is None  # the client side was plain
    assert flow.tls.upstream_version and flow.tls.upstream_cert_subject


def test_reverse_mode_refuses_connect(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, mode=Mode.parse(f"reverse:{echo_server.url}")) as proxy:
        out = curl("-p", "-x", proxy.url, "-w", "%{http_code}", f"{echo_server.url}/")
    assert out.returncode != 0 or b"400" in out.stdout


def test_upstream_mode_chains_two_proxies_for_http_and_https(
    tmp_path: Path,
    echo_server: EchoServer,
    tls_echo_server: EchoServer,
    upstream_ca_file: Path,
) -> None:
    with live_proxy(tmp_path / "b", upstream_ca=upstream_ca_file) as second:
        mode = Mode.parse(f"upstream:{second.url}")
        # The first proxy verifies what the second one presents: the second one's CA.
        with live_proxy(tmp_path / "a", mode=mode, upstream_ca=second.ca_file) as first:
            plain = curl("-x", first.url, f"{echo_server.url}/status/201")
            tls = curl(
                "-x",
                first.url,
                "--cacert",
                str(first.ca_file),
                f"https://localhost:{tls_echo_server.port}/status/202",
            )
            first_flows = first.finished(2)
        second_flows = second.finished(2)
    assert plain.stdout == b"status 201\n", plain.stderr
    assert tls.stdout == b"status 202\n", tls.stderr
    urls = [f"{echo_server.url}/status/201", f"https://localhost:{tls_echo_server.port}/status/202"]
    assert sorted(f.request.url for f in first_flows) == sorted(urls)
    assert sorted(f.request.url for f in second_flows) == sorted(urls)
    assert all(f.response and f.response.status_code in (201, 202) for f in second_flows)


def test_upstream_mode_with_the_upstream_proxy_down(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        mode = Mode.parse(f"upstream:http://127.0.0.1:{dead}")
        with live_proxy(tmp_path, mode=mode) as proxy:
            out = curl("-x", proxy.url, "-w", "%{http_code}", f"{echo_server.url}/")
            (flow,) = proxy.finished(1)
    assert out.stdout.endswith(b"502")
    assert flow.error is not None and flow.error.phase == "connect"


def test_proxy_auth_required(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, proxy_auth=("alice", "s3cret")) as proxy:
        denied = curl("-x", proxy.url, "-i", f"{echo_server.url}/echo")
        wrong = curl(
            "-x", proxy.url, "--proxy-user", "alice:nope", "-w", " %{http_code}",
            f"{echo_server.url}/echo",
        )  # fmt: skip
        ok = curl("-x", proxy.url, "--proxy-user", "alice:s3cret", f"{echo_server.url}/echo")
        (flow,) = proxy.finished(1)  # refused requests are answered, not recorded
    assert denied.stdout.startswith(b"HTTP/1.1 407 ")
    assert b'Proxy-Authenticate: Basic realm="inspector"' in denied.stdout
    assert b"pass the --proxy-auth credentials (e.g. curl --proxy-user USER:PASS)" in denied.stdout
    assert wrong.stdout == (
        b"inspector: proxy authentication required: "
        b"the credentials given do not match --proxy-auth\n 407"
    )
    names = [k.lower() for k, _ in json.loads(ok.stdout)["headers"]]
    assert "proxy-authorization" not in names  # never forwarded
    assert all(k.lower() != b"proxy-authorization" for k, _ in flow.request.headers)


def test_proxy_auth_for_connect(
    tmp_path: Path, tls_echo_server: EchoServer, upstream_ca_file: Path
) -> None:
    with live_proxy(tmp_path, proxy_auth=("bob", "pw"), upstream_ca=upstream_ca_file) as proxy:
        url = f"https://localhost:{tls_echo_server.port}/status/200"
        denied = curl("-x", proxy.url, "--cacert", str(proxy.ca_file), url)
        ok = curl("-x", proxy.url, "--proxy-user", "bob:pw", "--cacert", str(proxy.ca_file), url)
    assert denied.returncode != 0 and b"407" in denied.stderr
    assert ok.stdout == b"status 200\n", ok.stderr


def test_upstream_mode_tunnels_ignored_hosts_through_the_upstream_proxy(
    tmp_path: Path, tls_echo_server: EchoServer, upstream_ca_file: Path
) -> None:
    import re

    with live_proxy(tmp_path / "b", upstream_ca=upstream_ca_file) as second:
        mode = Mode.parse(f"upstream:{second.url}")
        with live_proxy(tmp_path / "a", mode=mode, ignore_hosts=re.compile("localhost")) as first:
            # The first proxy relays the tunnel untouched: the client sees the second's CA.
            out = curl(
                "-x",
                first.url,
                "--cacert",
                str(second.ca_file),
                f"https://localhost:{tls_echo_server.port}/status/200",
            )
            (tunnel,) = first.finished(1)
        (inner,) = second.finished(1)
    assert out.stdout == b"status 200\n", out.stderr
    assert tunnel.request.method == "CONNECT" and tunnel.error is None
    assert inner.request.url == f"https://localhost:{tls_echo_server.port}/status/200"
