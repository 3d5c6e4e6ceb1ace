"""Send requests for one host to another (host and port from the environment)."""

import os

from mitmproxy import http

TARGET_PORT = int(os.environ.get("REDIRECT_PORT", "80"))


def request(flow: http.HTTPFlow) -> None:
    if flow.request.pretty_host == "moved.invalid":
        flow.request.host = "127.0.0.1"
        flow.request.port = TARGET_PORT
