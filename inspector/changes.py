"""Rules, then addons, at the exchange's two stops, recording what they changed.

``Changes`` is the proxy's exchange hook for ``--block-list``, ``--map-local``,
``--map-remote``, ``--modify-headers``, ``--modify-body`` and ``-s`` scripts. At the
request stop (the request is complete, nothing sent upstream yet) the rules run in
their order (``inspector.rules``), then each addon's ``request`` hook; at the response
stop (the response is complete, the client has nothing yet) the response rules, then
each addon's ``response`` hook. A flow with ``flow.response`` set at the request stop
is answered without the upstream; one killed (``--block-list`` 444, ``flow.kill()``)
has its connection closed without a response. A response set at the request stop
goes through the response stop's rules and hooks at once (as in mitmproxy).

Recording: a changed flow keeps the request as the client sent it
(``flow.original_request``) and the response as the upstream sent it
(``flow.original_response``) beside the changed ones, and ``flow.modified_by`` lists what
changed it, in order: the rule (``--map-remote |a|b``) or the hook
(``addon.py:request``). A hook counts as a change when the message differs after it.
An exception in a rule or a hook is recorded on the flow as an exception event of phase
``rule`` or ``addon`` (class, message, ``file.py:LINE``) and the exchange goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from collections.abc import Callable

from inspector.addons.host import AddonHost, HookFailed
from inspector.bus import Bus, EventKind, FlowEvent
from inspector.config import Config
from inspector.failures import exc_message
from inspector.flow import Flow, FlowBody, FlowError, FlowRequest, FlowResponse, Phase
from inspector.http import HTTPFlow
from inspector.proxy.hooks import CloseConnection
from inspector.rules import RuleSet
from inspector.websocket import WebSocketData


def copy_request(r: FlowRequest) -> FlowRequest:
    # Field by field: dataclasses.replace costs several times more, on every held exchange.
    return FlowRequest(
        r.method, r.scheme, r.host, r.port, r.path, r.http_version,
        list(r.headers), r.body, list(r.trailers), r.timestamp,
    )  # fmt: skip


def copy_response(r: FlowResponse) -> FlowResponse:
    return FlowResponse(
        r.status_code, r.reason, r.http_version, list(r.headers), r.body, list(r.trailers),
        r.timestamp,
    )  # fmt: skip


def _request_state(r: FlowRequest) -> tuple:
    return (
        r.method,
        r.scheme,
        r.host,
        r.port,
        r.path,
        r.http_version,
        tuple(r.headers),
        r.body.data,
    )


def _response_state(r: FlowResponse | None) -> tuple | None:
    if r is None:
        return None
    return (id(r), r.status_code, r.reason, r.http_version, tuple(r.headers), r.body.data)


def capped(body: FlowBody, limit: int) -> FlowBody:
    """``body`` as the store keeps it: at most ``limit`` bytes, with the full size."""
    if len(body.data) <= limit:
        return body
    return FlowBody(body.data[:limit], body.size, True, body.sha256)


def _note(flow: Flow, labels: list[str]) -> None:
    if not flow.modified_by:  # the common case: one stop's rules, each named once
        flow.modified_by.extend(labels)
        return
    for label in labels:
        if label not in flow.modified_by:
            flow.modified_by.append(label)


def _record_failure(flow: Flow, exc: BaseException, phase: Phase, where: str) -> None:
    if flow.error is None:  # the first failure is the one that explains the rest
        message = f"{exc_message(exc)} ({where})"
        flow.error = FlowError(type(exc).__name__, message, phase, time.time())


@functools.lru_cache(maxsize=256)
def _takes_message(function: Callable[..., object]) -> bool:
    """``websocket_message(flow, message)`` (this API) or ``(flow)`` (mitmproxy's, which
    reads ``flow.websocket.messages[-1]``)?"""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read: call it as documented
        return True
    kinds = [p.kind for p in params]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Parameter.VAR_POSITIONAL in kinds or sum(k in positional for k in kinds) >= 2


class Changes:
    """The exchange hook for rules and addons (see the module docstring)."""

    def __init__(self, rules: RuleSet, addons: AddonHost, body_limit: int) -> None:
        self.rules = rules
        self.addons = addons
        self.body_limit = body_limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None

    @classmethod
    def from_config(cls, config: Config, report: Callable[[str], None] | None = None) -> Changes:
        """The rules and scripts of ``config`` (RuleError for a bad pattern); scripts load
        in ``start()``."""
        rules = RuleSet.from_options(
            block_list=config.block_list,
            map_local=config.map_local,
            map_remote=config.map_remote,
            modify_headers=config.modify_headers,
            modify_body=config.modify_body,
        )
        addons = AddonHost(config.scripts) if report is None else AddonHost(config.scripts, report)
        return cls(rules, addons, config.body_limit)

    def __bool__(self) -> bool:
        return bool(self.rules) or bool(self.addons)

    async def start(self, bus: Bus) -> None:
        """Load the scripts, run their ``running()`` hooks, watch their files, and run
        ``error`` hooks for failed exchanges (on this loop)."""
        await self.addons.start()
        if self.addons:
            self._watcher = asyncio.get_running_loop().create_task(self.addons.watch())
            self._unsubscribe = bus.subscribe(self._on_error, (EventKind.ERROR,))

    async def stop(self) -> None:
        """Stop watching, then run the scripts' ``done()`` hooks."""
        self._unsubscribe()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.addons.stop()

    def _on_error(self, event: FlowEvent) -> None:
        try:
            self.failed(event.flow)
        except RuntimeError:  # published off the proxy's loop: no hooks to run there
            pass

    # -- the request stop --

    def wants_request(self, flow: Flow) -> bool:
        if self.addons.scripts and self.addons.has("request"):
            return True
        return self.rules.may_hold and self.rules.holds_request(flow)

    def request_head(self, flow: Flow) -> None:
        """Map remote and header rules on a request that streams (no hold needed)."""
        if not self.rules.edits_heads:
            return
        r = flow.request
        # The rules replace the header list, never edit it: the one before is the original's.
        before = (r.scheme, r.host, r.port, r.path, r.headers)
        try:
            labels = self.rules.request_head(flow)
        except ValueError as e:  # a rewrite that cannot be used (say, a bad URL)
            _record_failure(flow, e, Phase.RULE, "the rule was not applied")
            labels = []
        if labels:  # rules label only what they changed
            _note(flow, labels)
            scheme, host, port, path, headers = before
            flow.original_request = FlowRequest(
                r.method,
                scheme,
                host,
                port,
                path,
                r.http_version,
                headers,
                r.body,
                list(r.trailers),
                r.timestamp,
            )  # fmt: skip  (its body is set as it streams)

    async def request(self, flow: Flow) -> None:
        """Rules, then addons; raises CloseConnection when the flow was killed."""
        view = HTTPFlow(flow)
        original = copy_request(flow.request)
        before = _request_state(flow.request)
        try:
            _note(flow, await self.rules.request(view))
        except ValueError as e:  # a rewrite that cannot be used (say, a bad URL)
            _record_failure(flow, e, Phase.RULE, "the rule was not applied")
        killed_by = Phase.RULE if view.killed else Phase.ADDON
        if not view.killed:
            await self._hooks("request", view)
        if _request_state(flow.request) != before:
            original.body = capped(original.body, self.body_limit)
            flow.original_request = original
        if view.killed:
            by = flow.modified_by[-1] if flow.modified_by else "an addon"
            raise CloseConnection(f"closed without a response by {by}", killed_by)
        if flow.response is not None:  # answered here: the response stop comes now
            await self._respond(flow, local=True)

    async def _hooks(self, name: str, view: HTTPFlow) -> None:
        flow = view.flow
        for hook in self.addons.hooks(name):
            request_before = _request_state(flow.request)
            response_before = _response_state(flow.response)
            try:
                await self.addons.call(hook, view)
            except HookFailed as e:
                _record_failure(flow, e.exc, Phase.ADDON, f"{e.where}, in {e.label}")
            if (
                _request_state(flow.request) != request_before
                or _response_state(flow.response) != response_before
            ):
                _note(flow, [hook.label])
            if view.killed:
                _note(flow, [hook.label])
                return

    # -- the response stop --

    def wants_response(self, flow: Flow) -> bool:
        """Held whole only for an addon or a rule on bodies that may apply: header rules
        edit a streamed head, so server-sent events and downloads stay live."""
        if self.addons.scripts and self.addons.has("response"):
            return True
        return self.rules.may_hold_response and self.rules.holds_response(flow)

    def response_head(self, flow: Flow) -> None:
        """Header rules on a response that streams."""
        r = flow.response
        if not self.rules.headers or r is None:
            return
        headers = r.headers  # replaced by the rules, never edited (see request_head)
        labels = self.rules.response_head(flow)
        if labels:
            _note(flow, labels)
            flow.original_response = FlowResponse(
                r.status_code,
                r.reason,
                r.http_version,
                headers,
                r.body,
                list(r.trailers),
                r.timestamp,
            )  # fmt: skip  (its body is set as it streams)

    async def response(self, flow: Flow) -> None:
        """Response rules, then addons; the upstream's response is kept if they change it."""
        await self._respond(flow, local=False)

    async def _respond(self, flow: Flow, *, local: bool) -> None:
        if flow.response is None:
            return
        original = copy_response(flow.response)
        before = _response_state(flow.response)
        view = HTTPFlow(flow)
        _note(flow, self.rules.response(view))
        await self._hooks("response", view)
        if not local and _response_state(flow.response) != before:
            original.body = capped(original.body, self.body_limit)
            flow.original_response = original

    # -- WebSocket messages (proxy/wsrelay.py) --

    def wants_websocket(self, flow: Flow) -> bool:
        """An addon reads WebSocket messages: the relay parses them for it."""
        return self.addons.has("websocket_message")

    async def websocket_message(self, flow: Flow, data: WebSocketData) -> None:
        """Each ``websocket_message`` hook in turn on ``data.messages[-1]``. One that raises
        is recorded (phase ``addon``) and what it changed is undone; one that changed or
        dropped the message is named in ``flow.modified_by``."""
        message = data.messages[-1]
        view = HTTPFlow(flow)
        view.websocket = data
        for hook in self.addons.hooks("websocket_message"):
            before = (message.content, message.type, message.dropped)
            args = (view, message) if _takes_message(hook.function) else (view,)
            try:
                await self.addons.call(hook, *args)
            except HookFailed as e:
                _record_failure(flow, e.exc, Phase.ADDON, f"{e.where}, in {e.label}")
                message.content, message.type, message.dropped = before
                continue
            if (message.content, message.type, message.dropped) != before:
                _note(flow, [hook.label])

    # -- outside the exchange --

    def failed(self, flow: Flow) -> None:
        """The exchange failed: run the ``error`` hooks soon (call on the proxy's loop)."""
        if not self.addons.has("error"):
            return
        task = asyncio.get_running_loop().create_task(self.addons.call_all("error", HTTPFlow(flow)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
