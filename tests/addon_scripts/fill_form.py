"""Change one field of url-encoded form posts; turn other requests into a form post."""

from mitmproxy import http


def request(flow: http.HTTPFlow) -> None:
    if flow.request.urlencoded_form:
        flow.request.urlencoded_form["comment"] = "edited by the proxy"
    else:
        flow.request.method = "POST"
        flow.request.urlencoded_form = [("generated", "yes"), ("count", "2")]
