"""Add a header to every response: ``inspector -s examples/add_header.py``.

An addon object keeps state between flows (here a counter).
"""

from inspector import http


class AddHeader:
    def __init__(self) -> None:
        self.count = 0

    def response(self, flow: http.HTTPFlow) -> None:
        self.count += 1
        flow.response.headers["X-Inspector-Count"] = str(self.count)


addons = [AddHeader()]
