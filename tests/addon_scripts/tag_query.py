"""Add a parameter to every request's query string, keeping the ones already there."""

from mitmproxy import http


def request(flow: http.HTTPFlow) -> None:
    flow.request.query["via"] = "proxy"
