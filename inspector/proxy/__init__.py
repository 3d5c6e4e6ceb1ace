"""The intercepting proxy: accept loop, per-connection HTTP/1.1 loop, tunnels, upstream pool."""

from inspector.proxy.server import ProxyServer

__all__ = ["ProxyServer"]
