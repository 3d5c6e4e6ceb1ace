"""Rewrite WebSocket messages: ``inspector -s examples/websocket_messages.py``.

Redacts the ``"token"`` field of JSON text messages both ways, and drops the client's
``{"type": "telemetry", ...}`` messages before the server sees them. Every message
changed or dropped is recorded beside what was received (the flow is ``[modified]``).
"""

import json

from inspector import http
from inspector.websocket import WebSocketMessage


def websocket_message(flow: http.HTTPFlow, message: WebSocketMessage) -> None:
    if not message.is_text:
        return
    try:
        data = json.loads(message.text)
    except ValueError:  # not JSON: leave it alone
        return
    if not isinstance(data, dict):
        return
    if message.from_client and data.get("type") == "telemetry":
        message.drop()
    elif "token" in data:
        data["token"] = "[redacted]"
        message.text = json.dumps(data)
