"""Log responses slower than a threshold to stderr, and mark them in the session.

``SLOW_SECONDS=0.5 inspector dump -s examples/log_slow_responses.py``; marked flows are
found later with the filter ``~marked``.
"""

import os
import sys

from inspector import http

THRESHOLD = float(os.environ.get("SLOW_SECONDS", "1.0"))


def response(flow: http.HTTPFlow) -> None:
    waited = flow.response.timestamp_start - flow.request.timestamp_start
    if waited >= THRESHOLD:
        flow.marked = True
        flow.comment = f"slow: {waited:.2f} s to the response head"
        print(
            f"slow response: {flow.request.method} {flow.request.pretty_url} "
            f"took {waited * 1000:.0f} ms",
            file=sys.stderr,
            flush=True,
        )
