"""Node through `inspector run` and `inspector env`: fetch (undici) and http/https, which
ignore HTTP(S)_PROXY before Node 22.21/24, are routed by the preload in NODE_OPTIONS, and
verify the intercepted TLS against the inspector CA (NODE_EXTRA_CA_CERTS)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from inspector.env_node import PRELOAD_NAME, node_options
from tests.cli_fixtures import inspector_env, run_inspector
from tests.servers import EchoServer
from tests.test_cli_run import assert_captured, inspector_run, recorded, summary

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

FETCH = """
fetch(process.argv[1]).then(async (r) => console.log(r.status, (await r.text()).length > 0),
  (e) => { console.error('fetch failed:', e.cause || e); process.exit(1); });
"""
HTTP_GET = """
const url = new URL(process.argv[1]);
require(url.protocol.slice(0, -1)).get(url, (r) => {
  let n = 0;
  r.on('data', (d) => { n += d.length; });
  r.on('end', () => console.log(r.statusCode, n > 0));
}).on('error', (e) => { console.error('get failed:', e); process.exit(1); });
"""
CLIENTS = {"fetch": FETCH, "http.get": HTTP_GET}


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node-conf")


def _node(tmp_path: Path, confdir: Path, ca: Path, code: str, url: str, **env: str):
    return inspector_run(
        tmp_path, confdir, ca, "node", "-e", code, url, env=inspector_env(**env) if env else None
    )


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_node_https_is_captured_and_verified(
    client: str, tmp_path: Path, confdir: Path, upstream_ca_file: Path, tls_echo_server: EchoServer
) -> None:
    url = f"{tls_echo_server.url}/echo"
    done = _node(tmp_path, confdir, upstream_ca_file, CLIENTS[client], url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200 true"
    assert_captured(done, tmp_path, url)  # intercepted: Node verified the inspector's leaf


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_node_plain_http_is_captured(
    client: str, tmp_path: Path, confdir: Path, upstream_ca_file: Path, echo_server: EchoServer
) -> None:
    url = f"{echo_server.url}/echo"
    done = _node(tmp_path, confdir, upstream_ca_file, CLIENTS[client], url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200 true"
    assert f"GET {url} -> 200 OK  " in done.stderr, done.stderr
    assert [f.request.url for f in recorded(tmp_path)] == [url]


def test_node_keeps_no_proxy_and_an_untrusted_server_fails(
    tmp_path: Path,
    confdir: Path,
    upstream_ca_file: Path,
    echo_server: EchoServer,
    tls_echo_server: EchoServer,
) -> None:
    direct = _node(
        tmp_path, confdir, upstream_ca_file, FETCH, f"{echo_server.url}/echo", NO_PROXY="127.0.0.1"
    )
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.strip() == "200 true"
    assert summary(direct.stderr)[:2] == (0, 0)  # NO_PROXY: straight to the server
    # Direct to a server whose CA Node does not trust: verification is still on.
    url = f"{tls_echo_server.url}/echo"
    failed = _node(tmp_path, confdir, upstream_ca_file, FETCH, url, no_proxy="localhost,127.0.0.1")
    assert failed.returncode == 1
    assert "certificate" in failed.stderr.lower() or "CERT" in failed.stderr, failed.stderr


def test_existing_node_options_are_kept_and_odd_paths_quoted(
    tmp_path: Path, upstream_ca_file: Path, tls_echo_server: EchoServer
) -> None:
    confdir = tmp_path / 'my "conf" dir\\x'
    show = "console.log(JSON.stringify([process.env.NODE_OPTIONS, process.execArgv]))"
    code = f"{show}; {FETCH}"
    url = f"{tls_echo_server.url}/echo"
    done = _node(tmp_path, confdir, upstream_ca_file, code, url, NODE_OPTIONS="--no-warnings")
    assert done.returncode == 0, done.stderr
    options, _ = json.loads(done.stdout.splitlines()[0])
    assert options == node_options("--no-warnings", confdir / PRELOAD_NAME)
    assert options.startswith("--no-warnings --require ")
    assert done.stdout.splitlines()[1] == "200 true"
    assert_captured(done, tmp_path, url)


def test_node_options_is_not_repeated() -> None:
    preload = Path("/c/node-proxy.cjs")
    once = node_options("--no-warnings", preload)
    assert node_options(once, preload) == once
    assert node_options("", Path('/a b/"q"\\/node-proxy.cjs')) == (
        '--require "/a b/\\"q\\"\\\\/node-proxy.cjs"'
    )


def test_a_shell_pointed_by_env_routes_node_fetch(
    tmp_path: Path, tls_echo_server: EchoServer, upstream_ca_file: Path
) -> None:
    from tests.proxy_process import ProxyProcess

    proxy = ProxyProcess(tmp_path, "--upstream-ca", str(upstream_ca_file))
    url = f"{tls_echo_server.url}/echo"
    try:
        lines = run_inspector("env", "--confdir", str(proxy.confdir), "--proxy", proxy.url)
        assert lines.returncode == 0, lines.stderr
        assert "export NODE_OPTIONS='--require " in lines.stdout
        shell = subprocess.run(
            ["sh", "-c", 'eval "$1"; node -e "$2" "$3"', "sh", lines.stdout, FETCH, url],
            capture_output=True, text=True, timeout=60, env=inspector_env(),
        )  # fmt: skip
        assert shell.stdout.strip() == "200 true", shell.stderr
    finally:
        out, _ = proxy.stop()
    assert f"GET {url} -> 200 OK" in out
