"""What every connection and exchange of one proxy shares, passed in as one immutable object.

The connection layer (``http1.py``, and ``tunnel.py`` for CONNECT) and the exchange layer
(``exchange.py``) take a ``ProxyContext`` instead of reaching into the server: the
configuration, the upstream pool, the bus, the exchange hooks, flow ids and the few
facts known once the proxy listens. Its fields never change; the only state it leads to
is the pool's, the id counter and the ``Lifecycle`` flag the server sets when it stops.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inspector.bus import Bus, EventKind, FlowEvent
from inspector.config import Config
from inspector.failures import flow_error
from inspector.flow import Flow, FlowRequest, Phase
from inspector.proxy.deadlines import ReadDeadlines
from inspector.proxy.hooks import ExchangeHook
from inspector.proxy.modes import ProxyAuth
from inspector.proxy.upstream import UpstreamPool

if TYPE_CHECKING:
    from certs import CertStore


class FlowIds:
    """Flow ids: a random per-process prefix and a counter, 32 hex digits like a uuid4 hex,
    without a getrandom() call per exchange."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


class Lifecycle:
    """Whether the proxy is stopping: exchanges in flight finish, none start after them."""

    __slots__ = ("closing",)

    def __init__(self) -> None:
        self.closing = False


@dataclass(frozen=True, slots=True)
class ProxyContext:
    """One proxy's shared parts; every connection and exchange gets the same one."""

    config: Config
    pool: UpstreamPool
    bus: Bus
    certstore: CertStore
    deadlines: ReadDeadlines
    hooks: tuple[ExchangeHook, ...]  # run at the exchange's two stops, in this order
    # Rules or addons are loaded: they may send a tunnel's requests elsewhere or answer
    # them, so a CONNECT target that cannot be dialled does not refuse the tunnel.
    tunnels_outlive_targets: bool
    auth: ProxyAuth | None  # --proxy-auth, or None: no authentication
    new_flow_id: FlowIds
    lifecycle: Lifecycle
    listen_text: str  # host:port the proxy listens on, for help texts
    mode_text: str  # str(config.mode), recorded on each flow
    idle_timeout: float  # a keep-alive client may stay silent this long between requests
    head_timeout: float  # a request head must be complete this long after its first byte

    @property
    def closing(self) -> bool:
        return self.lifecycle.closing

    def publish(self, kind: EventKind, flow: Flow) -> None:
        bus = self.bus
        if bus.wants(kind):  # dump and the store take only finished flows
            bus.publish(FlowEvent(kind, flow))

    def new_flow(self, request: FlowRequest, client_addr: tuple[str, int], start: float) -> Flow:
        """A new flow from ``client_addr``, whose request head began at ``start``."""
        flow = Flow(
            request=request, id=self.new_flow_id(), client_addr=client_addr, mode=self.mode_text
        )
        flow.timings.start = start
        return flow

    def finish(self, flow: Flow) -> None:
        """The exchange ended with a response: stamp and publish it."""
        flow.timings.end = time.time()
        self.publish(EventKind.RESPONSE, flow)

    def finish_error(self, flow: Flow, exc: BaseException, phase: Phase) -> None:
        """The exchange failed in ``phase``: record why and publish it (once)."""
        if flow.timings.end is not None:
            return
        flow.error = flow_error(exc, phase)
        flow.timings.end = time.time()
        self.publish(EventKind.ERROR, flow)
