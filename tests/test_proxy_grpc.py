"""gRPC through the proxy: grpcio client and server, over TLS (the client trusting the
inspector CA) and insecure (h2c prior knowledge inside CONNECT), via the proxy variables
gRPC honours, also as the command of `inspector run`; each call is a flow with its gRPC
status by name."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme

from inspector import grpc as grpc_model
from inspector.render import flow_line
from tests.cli_fixtures import ROOT, inspector_env, run_inspector
from tests.grpc_peers import GrpcServer, call
from tests.proxy_fixtures import LiveProxy, live_proxy


@pytest.fixture(scope="module")
def tls_server(upstream_ca: trustme.CA) -> Iterator[GrpcServer]:
    cert = upstream_ca.issue_cert("localhost")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    server = GrpcServer(tls=(cert.private_key_pem.bytes(), chain))
    yield server
    server.close()


@pytest.fixture(scope="module")
def plain_server() -> Iterator[GrpcServer]:
    server = GrpcServer()
    yield server
    server.close()


@pytest.fixture
def proxied(
    tmp_path: Path, upstream_ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveProxy]:
    with live_proxy(tmp_path, upstream_ca=upstream_ca_file) as proxy:
        monkeypatch.setenv("grpc_proxy", proxy.url)  # what grpcio reads for its CONNECT
        monkeypatch.delenv("no_grpc_proxy", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        yield proxy


def _calls(channel: grpc.Channel) -> tuple[object, object, grpc.StatusCode]:
    unary = call(channel, "Unary", b"hello")
    stream = call(channel, "Stream", b"s")
    with pytest.raises(grpc.RpcError) as failed:
        call(channel, "Missing", b"x")
    return unary, stream, failed.value.code()


def _check(proxy: LiveProxy, results: tuple[object, object, grpc.StatusCode]) -> None:
    unary, stream, code = results
    assert unary == b"olleh"
    assert stream == [b"s0", b"s1", b"s2"]
    assert code == grpc.StatusCode.NOT_FOUND
    flows = {f.request.path: f for f in proxy.finished(3)}
    assert set(flows) == {"/test.Echo/Unary", "/test.Echo/Stream", "/test.Echo/Missing"}
    assert {f.request.http_version for f in flows.values()} == {"HTTP/2"}
    names = {path: grpc_model.status(f).name for path, f in flows.items()}
    assert names == {
        "/test.Echo/Unary": "OK",
        "/test.Echo/Stream": "OK",
        "/test.Echo/Missing": "NOT_FOUND",
    }
    missing = flows["/test.Echo/Missing"]
    assert grpc_model.status(missing).message == "no such thing"
    assert " -> 200 OK grpc NOT_FOUND  " in flow_line(missing)
    messages = grpc_model.messages(flows["/test.Echo/Stream"].response.body.data)
    assert [(m.size, m.complete) for m in messages] == [(2, True)] * 3


def test_grpc_over_tls_trusting_the_inspector_ca(
    proxied: LiveProxy, tls_server: GrpcServer
) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=proxied.ca_file.read_bytes())
    with grpc.secure_channel(f"localhost:{tls_server.port}", creds) as channel:
        results = _calls(channel)
    _check(proxied, results)


def test_grpc_insecure_is_h2c_inside_connect(proxied: LiveProxy, plain_server: GrpcServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{plain_server.port}") as channel:
        results = _calls(channel)
    _check(proxied, results)


def test_grpc_over_tls_under_inspector_run_trusts_the_bundle(
    tmp_path: Path, tls_server: GrpcServer, upstream_ca_file: Path
) -> None:
    # grpcio reads neither SSL_CERT_FILE nor the system store: its roots come from
    # GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, which `inspector run` must point at the bundle.
    client = tmp_path / "client.py"
    client.write_text(
        "import sys, grpc\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.grpc_peers import call\n"
        f"channel = grpc.secure_channel('localhost:{tls_server.port}', "
        "grpc.ssl_channel_credentials())\n"
        "print(call(channel, 'Unary', b'hello'))\n"
    )
    done = run_inspector(
        "run", "--confdir", str(tmp_path / "conf"), "--session", str(tmp_path / "s.db"),
        "--upstream-ca", str(upstream_ca_file), "--", sys.executable, str(client),
        env=inspector_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "b'olleh'"
    url = f"https://localhost:{tls_server.port}/test.Echo/Unary"
    assert f"POST {url} -> 200 OK grpc OK  " in done.stderr
