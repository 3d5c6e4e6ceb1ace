"""Keep tokens out of the client's view and of the recording's changed copy.

Replaces the value of JSON keys that hold credentials (``token``, ``access_token``,
``refresh_token``, ``password``) in JSON responses with ``[redacted]``. The flow still
keeps the upstream's original response beside the changed one (``inspector show``).
"""

import json

from inspector import http

SECRET_KEYS = {"token", "access_token", "refresh_token", "id_token", "password"}


def _redact(value: object) -> object:
    if isinstance(value, dict):
        return {k: "[redacted]" if k in SECRET_KEYS else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def response(flow: http.HTTPFlow) -> None:
    content_type = flow.response.headers.get("content-type", "")
    if "json" not in content_type or flow.response.text is None:
        return
    try:
        data = json.loads(flow.response.text)
    except ValueError:
        return  # not JSON after all: leave it alone
    redacted = _redact(data)
    if redacted != data:
        flow.response.text = json.dumps(redacted)
