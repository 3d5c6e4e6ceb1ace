"""The event bus: synchronous delivery, unsubscribe, failing subscribers, threads."""

from __future__ import annotations

import io
import threading

from inspector.bus import Bus, EventKind, FlowEvent
from inspector.flow import Flow, FlowRequest


def make_event(kind: EventKind = EventKind.STARTED) -> FlowEvent:
    return FlowEvent(kind, Flow(FlowRequest("GET", "http", "127.0.0.1", 80, "/")))


def test_event_kinds_are_the_contract_names() -> None:
    assert [k.name for k in EventKind] == [
        "STARTED",
        "REQUEST",
        "RESPONSE_HEADERS",
        "RESPONSE",
        "ERROR",
        "WEBSOCKET",
        "INTERCEPTED",
        "UPDATED",
        "REMOVED",
    ]


def test_publish_calls_every_subscriber_in_order_in_the_publisher_thread() -> None:
    bus = Bus()
    seen: list[tuple[str, FlowEvent, int]] = []
    bus.subscribe(lambda e: seen.append(("a", e, threading.get_ident())))
    bus.subscribe(lambda e: seen.append(("b", e, threading.get_ident())))
    event = make_event()
    bus.publish(event)
    me = threading.get_ident()
    assert seen == [("a", event, me), ("b", event, me)]


def test_publish_without_subscribers_does_nothing() -> None:
    bus = Bus()
    bus.publish(make_event())
    assert len(bus) == 0


def test_a_subscriber_gets_only_the_kinds_it_names() -> None:
    bus = Bus()
    finished: list[EventKind] = []
    everything: list[EventKind] = []
    unsubscribe = bus.subscribe(
        lambda e: finished.append(e.kind), (EventKind.RESPONSE, EventKind.ERROR)
    )
    assert not bus.wants(EventKind.STARTED) and bus.wants(EventKind.ERROR)
    bus.subscribe(lambda e: everything.append(e.kind))
    assert all(bus.wants(kind) for kind in EventKind)
    for kind in (EventKind.STARTED, EventKind.RESPONSE, EventKind.WEBSOCKET, EventKind.ERROR):
        bus.publish(make_event(kind))
    assert finished == [EventKind.RESPONSE, EventKind.ERROR]
    assert len(everything) == 4
    unsubscribe()
    assert bus.wants(EventKind.RESPONSE) and len(bus) == 1


def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    bus = Bus()
    got: list[FlowEvent] = []
    other: list[FlowEvent] = []
    unsubscribe = bus.subscribe(got.append)
    bus.subscribe(other.append)
    bus.publish(make_event())
    unsubscribe()
    unsubscribe()
    bus.publish(make_event(EventKind.RESPONSE))
    assert len(got) == 1
    assert [e.kind for e in other] == [EventKind.STARTED, EventKind.RESPONSE]
    assert len(bus) == 1


def test_same_callback_twice_is_two_subscriptions() -> None:
    bus = Bus()
    got: list[FlowEvent] = []
    first = bus.subscribe(got.append)
    bus.subscribe(got.append)
    bus.publish(make_event())
    assert len(got) == 2
    first()
    bus.publish(make_event())
    assert len(got) == 3


def test_failing_subscriber_is_reported_once_and_dropped() -> None:
    err = io.StringIO()
    bus = Bus(stderr=err)
    got: list[FlowEvent] = []

    def broken(event: FlowEvent) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    for _ in range(3):
        bus.publish(make_event(EventKind.RESPONSE))
    assert len(got) == 3  # the others keep receiving every event
    report = err.getvalue()
    assert report.count("was unsubscribed") == 1
    assert "broken" in report and "RuntimeError: subscriber bug" in report
    assert "response event" in report
    assert len(bus) == 1


def test_unsubscribing_itself_during_publish_is_safe() -> None:
    bus = Bus()
    got: list[str] = []
    unsubscribe = None

    def once(event: FlowEvent) -> None:
        got.append("once")
        assert unsubscribe is not None
        unsubscribe()

    unsubscribe = bus.subscribe(once)
    bus.subscribe(lambda e: got.append("other"))
    bus.publish(make_event())
    bus.publish(make_event())
    assert got == ["once", "other", "other"]


def test_concurrent_subscribe_unsubscribe_and_publish() -> None:
    bus = Bus()
    steady: list[FlowEvent] = []
    bus.subscribe(steady.append)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(2000):
                unsubscribe = bus.subscribe(lambda e: None)
                unsubscribe()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def publish() -> None:
        try:
            while not stop.is_set():
                bus.publish(make_event())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    publishers = [threading.Thread(target=publish) for _ in range(2)]
    churners = [threading.Thread(target=churn) for _ in range(3)]
    for t in publishers + churners:
        t.start()
    for t in churners:
        t.join(timeout=30)
    stop.set()
    for t in publishers:
        t.join(timeout=30)
    assert not errors
    assert len(bus) == 1  # every temporary subscription was removed
    assert steady  # the steady subscriber saw the events throughout
