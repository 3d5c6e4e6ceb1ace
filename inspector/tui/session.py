"""What the UI works on: a session store, and when live the proxy's bus and interceptor.

One small facade so that screens never care whether they show a live proxy or a saved
file: a saved session is read-only apart from replay (whose flows stay in memory) and
export.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.bus import Bus
from inspector.config import DEFAULT_BODY_LIMIT, Config
from inspector.flow import Flow
from inspector.intercept import Interceptor
from inspector.sessions import open_session
from inspector.store import Store
from inspector.tui.flow_index import Query
from inspector.tui.rows import FlowRow
from inspector.tui.widgets.status_bar import SourceInfo
from protocol.authority import host_port

if TYPE_CHECKING:
    from inspector.runtime import ProxyThread

ROWS_PER_QUERY = 500  # list rows read per store query


class SessionError(Exception):
    """The session cannot be opened; the message says why and what to do."""


@dataclass
class Session:
    store: Store
    info: SourceInfo
    bus: Bus | None = None
    interceptor: Interceptor | None = None  # when live
    runtime: ProxyThread | None = None  # when live: stopped by close()
    insecure: bool = False
    upstream_ca: Path | None = None
    body_limit: int = DEFAULT_BODY_LIMIT
    intercept_expr: str | None = None
    _memory: dict[str, Flow] = field(default_factory=dict)  # replays of a read-only session

    @property
    def readonly(self) -> bool:
        return self.info.readonly

    # --- reads ----------------------------------------------------------------------------

    def all_seqs(self) -> array:
        """Every stored flow's row id, in capture order."""
        return self.store.all_seqs()

    def rows_at(self, seqs: list[int]) -> dict[int, FlowRow]:
        """The list rows of the stored flows at row ids ``seqs`` (indexed columns only)."""
        rows: dict[int, FlowRow] = {}
        for i in range(0, len(seqs), ROWS_PER_QUERY):
            for seq, summary in self.store.summaries_by_seq(seqs[i : i + ROWS_PER_QUERY]).items():
                row = rows[seq] = FlowRow.from_summary(summary)
                row.seq = seq
        return rows

    def seqs_of(self, ids: list[str]) -> dict[str, int]:
        return self.store.seqs_of(ids)

    def ids_at(self, seqs: list[int]) -> dict[int, str]:
        return self.store.ids_at(seqs)

    def tail(self, after: int) -> list[tuple[int, str]]:
        """``(row id, flow id)`` of the flows stored past row id ``after``."""
        return self.store.tail(after)

    def list_seqs(self, query: Query, cancelled: Callable[[], bool]) -> array | None:
        """The stored part of the flow list for ``query`` (None once ``cancelled()``)."""
        return self.store.list_seqs(
            query.expr, sort=query.sort, descending=query.descending,
            only_marked=query.only_marked, marks=query.marks, upto=query.upto,
            cancelled=cancelled,
        )  # fmt: skip

    def failed_flows(self, limit: int) -> list[Flow]:
        """The newest ``limit`` flows with an exception (without bodies), oldest first."""
        total = self.store.count("~e")
        return self.store.summaries(max(0, total - limit), limit, "~e")

    def get(self, flow_id: str) -> Flow | None:
        flow = self._memory.get(flow_id)
        if flow is not None:
            return flow
        flow = self.store.get(flow_id)
        if flow is None and not self.readonly:
            self.store.flush()  # it may still be queued for the writer
            flow = self.store.get(flow_id)
        return flow

    def held_flow(self, flow_id: str) -> Flow | None:
        if self.interceptor is None:
            return None
        for flow in self.interceptor.held():
            if flow.id == flow_id:
                return flow
        return None

    def stage_of(self, flow_id: str) -> str | None:
        """``request`` or ``response`` for a held flow, else None."""
        if self.interceptor is None:
            return None
        return self.interceptor.stage_of(flow_id)

    def held_ids(self) -> set[str]:
        if self.interceptor is None:
            return set()
        return {flow.id for flow in self.interceptor.held()}

    def search(self, text: str) -> list[str]:
        if not self.readonly:
            self.store.flush()
        return self.store.search(text)

    # --- writes ---------------------------------------------------------------------------

    def record(self, flow: Flow) -> None:
        """Keep a flow the UI made (a replay): in the store when writable, else in memory."""
        if self.readonly:
            self._memory[flow.id] = flow
        else:
            self.store.put(flow)

    def set_marked(self, ids: list[str], marked: bool) -> None:
        for flow_id in ids:
            if flow_id in self._memory:
                self._memory[flow_id].marked = marked
        if not self.readonly:
            self.store.set_marked(ids, marked)

    def delete(self, ids: list[str]) -> None:
        for flow_id in ids:
            self._memory.pop(flow_id, None)
        if not self.readonly:
            self.store.delete(ids)

    # --- intercept ------------------------------------------------------------------------

    def set_intercept(self, expr: str | None) -> None:
        if self.interceptor is None:
            raise SessionError("intercepting needs a live proxy (not `inspector show`)")
        self.interceptor.set_filter(expr)
        self.intercept_expr = expr

    def resume(self, flow_id: str) -> None:
        if self.interceptor is not None:
            self.interceptor.resume(flow_id)

    def kill(self, flow_id: str) -> None:
        if self.interceptor is not None:
            self.interceptor.kill(flow_id)

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
        else:
            self.store.close()


def open_saved(path: Path) -> Session:
    """A saved session file, read-only; ConfigError (from ``inspector.sessions``) if unusable."""
    store = open_session(path)  # ConfigError saying what is wrong
    return Session(store=store, info=SourceInfo(session=str(store.path), readonly=True))


def open_live(config: Config) -> Session:
    """Start the proxy in a background thread and wrap what the UI needs of it."""
    from inspector.runtime import ProxyThread

    runtime = ProxyThread(config)
    runtime.start()
    warnings = ("--insecure: upstream certificates are NOT verified",) if config.insecure else ()
    host, port = runtime.address
    info = SourceInfo(
        session=str(runtime.store.path),
        address=f"http://{host_port(host, port)}",
        mode=str(config.mode),
        insecure=config.insecure,
        ca_path=str(config.confdir / "ca.pem"),
        warnings=warnings,
    )
    return Session(
        store=runtime.store,
        info=info,
        bus=runtime.bus,
        interceptor=runtime.interceptor,
        runtime=runtime,
        insecure=config.insecure,
        upstream_ca=config.upstream_ca,
        body_limit=config.body_limit,
        intercept_expr=config.intercept,
    )
