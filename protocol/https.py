"""``HTTPSConnection``: the synchronous client over TLS, as ``http.client``'s."""

from __future__ import annotations

import socket
import ssl
import warnings

from protocol.client import HTTPS_PORT, HTTPConnection
from protocol.connection import CLIENT, Connection


class HTTPSConnection(HTTPConnection):
    """HTTP over TLS; verifies the certificate and the host name unless told otherwise."""

    default_port = HTTPS_PORT

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        context: ssl.SSLContext | None = None,
        key_file: str | None = None,
        cert_file: str | None = None,
        timeout: float | object | None = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
        source_address: tuple[str, int] | None = None,
        blocksize: int = 8192,
        check_hostname: bool | None = None,
    ) -> None:
        super().__init__(host, port, timeout, source_address, blocksize)
        if key_file is not None or cert_file is not None or check_hostname is not None:
            warnings.warn(
                "key_file, cert_file and check_hostname are deprecated, use a custom context "
                "instead.",
                DeprecationWarning,
                2,
            )
        self.key_file = key_file
        self.cert_file = cert_file
        if context is None:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            if context.post_handshake_auth is not None:
                context.post_handshake_auth = True
        if check_hostname is None:
            check_hostname = context.check_hostname
        if check_hostname and context.verify_mode == ssl.CERT_NONE:
            raise ValueError(
                "check_hostname needs a SSL context with either CERT_OPTIONAL or CERT_REQUIRED"
            )
        if key_file or cert_file:
            context.load_cert_chain(cert_file, key_file)  # type: ignore[arg-type]
            if context.post_handshake_auth is not None:
                context.post_handshake_auth = True  # servers may ask for it after TLS 1.3
        context.check_hostname = check_hostname
        self._context = context

    def connect(self) -> None:
        """TCP (and the tunnel), then the TLS handshake with SNI for the origin."""
        super().connect()
        if self._tunnel_leftover:
            self.close()
            raise OSError("Tunnel connection failed: the proxy sent data before the TLS handshake")
        server_hostname = self._tunnel_host or self.host
        try:
            self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)
        except BaseException:
            self.close()
            raise
        self._core = Connection(CLIENT)
