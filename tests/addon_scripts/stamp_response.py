"""Add a header to every response."""

from mitmproxy import http


def response(flow: http.HTTPFlow) -> None:
    flow.response.headers["X-Stamped-By"] = "an addon"
