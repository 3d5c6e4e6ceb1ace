"""Answer requests for one host from the proxy itself: that host does not even exist."""

from mitmproxy import http


def request(flow: http.HTTPFlow) -> None:
    if flow.request.pretty_host == "answered.invalid":
        flow.response = http.Response.make(
            200,
            b"<h1>answered by the proxy</h1>",
            {"Content-Type": "text/html"},
        )
