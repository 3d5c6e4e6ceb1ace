"""The exchange layer's two stops, where rules, addons and the interceptor plug in.

An exchange asks each hook, once the request head is known, whether it wants the
request (``wants_request``); those that do get ``request(flow)`` once the whole request
body has been read and before anything goes upstream. Likewise ``wants_response`` once
the response head is known, and ``response(flow)`` once the whole response body is
read and before the client gets any of it. Hooks run in the order the context lists
them. A flow no hook wants streams through without being held whole; a hook that does
not want it gets ``request_head(flow)`` / ``response_head(flow)`` just before the head
is sent, to edit the head only (the rules do: header and URL rules cost no hold).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from inspector.flow import Flow
    from inspector.intercept import Interceptor


class CloseConnection(Exception):
    """Raised by ``request(flow)``: close the client connection without any response
    (``--block-list`` 444, an addon's ``flow.kill()``); the message is the flow's error,
    ``phase`` who closed it (``"rule"`` or ``"addon"``)."""

    def __init__(self, message: str, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class ExchangeHook(Protocol):
    """A step run at the exchange's two stops.

    ``request(flow)`` may edit ``flow.request`` (changing scheme, host or port re-targets
    it), set ``flow.response`` to answer without contacting the upstream, or raise
    ``inspector.intercept.FlowKilled`` to drop the exchange (the client gets a 502), or
    raise ``CloseConnection`` to close the client's connection without a response.
    ``response(flow)`` may edit ``flow.response``; the framing headers the client gets
    follow the body it is given. A body larger than the body limit cannot be held whole:
    a response that large is relayed without ``response`` being called, and a request
    that large reaches ``request`` with its recorded (truncated) body.
    """

    def wants_request(self, flow: Flow) -> bool: ...

    def request_head(self, flow: Flow) -> None:
        """Optional. Called instead of ``request`` when this hook did not want it held:
        just before the head goes upstream, it may edit the head (headers, URL), never
        the body or its framing (Content-Length, Transfer-Encoding)."""

    async def request(self, flow: Flow) -> None: ...

    def wants_response(self, flow: Flow) -> bool: ...

    def response_head(self, flow: Flow) -> None:
        """Optional. Likewise for a response streamed to the client: headers but framing."""

    async def response(self, flow: Flow) -> None: ...


class InterceptHook:
    """The interceptor as a hook: hold matching flows until the user resumes or kills them."""

    __slots__ = ("interceptor",)

    def __init__(self, interceptor: Interceptor) -> None:
        self.interceptor = interceptor

    def wants_request(self, flow: Flow) -> bool:
        return self.interceptor.matches(flow)

    def request_head(self, flow: Flow) -> None:
        pass  # the interceptor edits only what it holds

    async def request(self, flow: Flow) -> None:
        await self.interceptor.hold(flow, "request")

    def wants_response(self, flow: Flow) -> bool:
        return self.interceptor.matches(flow)

    def response_head(self, flow: Flow) -> None:
        pass

    async def response(self, flow: Flow) -> None:
        await self.interceptor.hold(flow, "response")


def held_at_head(hooks: tuple[ExchangeHook, ...], flow: Flow, stop: str) -> list[ExchangeHook]:
    """The hooks that hold the message whole at ``stop`` ("request" or "response"); the
    others get their ``request_head``/``response_head`` now, before the head is sent."""
    if not hooks:
        return []
    wants, head = _STOPS[stop]
    held = []
    for hook in hooks:
        if getattr(hook, wants)(flow):
            held.append(hook)
        else:
            edit_head = getattr(hook, head, None)  # optional
            if edit_head is not None:
                edit_head(flow)
    return held


_STOPS = {
    "request": ("wants_request", "request_head"),
    "response": ("wants_response", "response_head"),
}
