"""A gRPC server for the tests: grpcio with generic handlers (bytes in, bytes out, no codegen).

``/test.Echo/Unary`` answers its request reversed; ``/test.Echo/Stream`` answers with three
messages; ``/test.Echo/Missing`` fails with NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc

SERVICE = "test.Echo"


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request[::-1]


def _stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for i in range(3):
        yield request + str(i).encode()


def _missing(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    return b""


def _identity(data: bytes) -> bytes:
    return data


_HANDLERS = {
    "Unary": grpc.unary_unary_rpc_method_handler(
        _unary, request_deserializer=_identity, response_serializer=_identity
    ),
    "Stream": grpc.unary_stream_rpc_method_handler(
        _stream, request_deserializer=_identity, response_serializer=_identity
    ),
    "Missing": grpc.unary_unary_rpc_method_handler(
        _missing, request_deserializer=_identity, response_serializer=_identity
    ),
}


class GrpcServer:
    """A grpcio server on 127.0.0.1: TLS when a (key, cert chain) PEM pair is given."""

    def __init__(self, tls: tuple[bytes, bytes] | None = None) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, _HANDLERS),)
        )
        if tls is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            creds = grpc.ssl_server_credentials([tls])
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def close(self) -> None:
        self.server.stop(grace=None)


def call(channel: grpc.Channel, method: str, request: bytes) -> bytes | list[bytes]:
    """Call ``method`` of the test service (streams come back as a list)."""
    path = f"/{SERVICE}/{method}"
    if method == "Stream":
        stub = channel.unary_stream(
            path, request_serializer=_identity, response_deserializer=_identity
        )
        return list(stub(request, timeout=10))
    stub = channel.unary_unary(path, request_serializer=_identity, response_deserializer=_identity)
    return stub(request, timeout=10)
