"""`inspector dump` with and without `--no-http2`, a real subprocess, with curl and hypercorn."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.store import Store
from tests.conftest import run_curl
from tests.h2_fixtures import hypercorn_plain, hypercorn_tls
from tests.h2_servers import HypercornServer
from tests.proxy_process import ProxyProcess

__all__ = ["hypercorn_plain", "hypercorn_tls"]  # fixtures used by name


def _curl_through(proxy: ProxyProcess, url: str) -> tuple[str, str]:
    """curl --http2 through the proxy: (the HTTP version curl spoke, the body it got)."""
    done = run_curl(
        "--http2", "-x", proxy.url, "--cacert", str(proxy.confdir / "ca.pem"),
        "-w", "\n%{http_version}", url, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body, _, version = done.stdout.rpartition("\n")
    return version, body


@pytest.mark.parametrize("no_http2", [False, True])
def test_no_http2_makes_an_h2_client_and_server_speak_http1(
    tmp_path: Path, hypercorn_tls: HypercornServer, upstream_ca_file: Path, no_http2: bool
) -> None:
    options = ["--upstream-ca", str(upstream_ca_file)] + (["--no-http2"] if no_http2 else [])
    proxy = ProxyProcess(tmp_path, *options)
    try:
        version, body = _curl_through(proxy, f"https://localhost:{hypercorn_tls.port}/v")
    finally:
        out, err = proxy.stop()
    assert proxy.proc.returncode == 0, err
    expected = "1.1" if no_http2 else "2"
    assert version == expected  # what curl spoke to the proxy
    assert body == f"GET /v? http/{expected} body=0"  # what hypercorn heard from the proxy
    assert out.startswith(f"GET https://localhost:{hypercorn_tls.port}/v -> 200 OK  ")
    with Store(proxy.session, readonly=True) as store:
        [flow] = store.iter_flows()
    assert flow.request.http_version == flow.response.http_version == f"HTTP/{expected}"


@pytest.mark.parametrize("where", ["option", "config.toml"])
def test_no_http2_refuses_prior_knowledge(
    tmp_path: Path, hypercorn_plain: HypercornServer, where: str
) -> None:
    mode = f"reverse:http://127.0.0.1:{hypercorn_plain.port}"
    if where == "config.toml":
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "config.toml").write_text("no-http2 = true\n")
        proxy = ProxyProcess(tmp_path, "--mode", mode)
    else:
        proxy = ProxyProcess(tmp_path, "--no-http2", "--mode", mode)
    try:
        refused = run_curl("--http2-prior-knowledge", f"{proxy.url}/pk", text=True)
        plain = run_curl("-w", "\n%{http_version}", f"{proxy.url}/h1", text=True)
    finally:
        out, err = proxy.stop()
    assert refused.returncode != 0  # curl cannot speak HTTP/2 to a proxy that will not
    assert plain.stdout == "GET /h1? http/1.1 body=0\n1.1", plain.stderr
    [line] = out.splitlines()  # the refused preface is no exchange
    assert line.startswith(f"GET http://127.0.0.1:{hypercorn_plain.port}/h1 -> 200 OK  ")
    assert "Traceback" not in err
