"""Answer one endpoint from the proxy: the upstream is never contacted for it.

``inspector -s examples/mock_endpoint.py``, then any request to ``/api/status`` on any
host gets this JSON; everything else goes through.
"""

import json

from inspector import http

MOCKED_PATH = "/api/status"


def request(flow: http.HTTPFlow) -> None:
    if flow.request.path.split("?")[0] == MOCKED_PATH:
        body = json.dumps({"status": "ok", "mocked": True, "host": flow.request.pretty_host})
        flow.response = http.Response.make(200, body, {"Content-Type": "application/json"})
