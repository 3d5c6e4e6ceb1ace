"""Addon scripts (inspector.addons): loading, containment, slow hooks, hot reload."""

from __future__ import annotations

import asyncio
import os
import re
import textwrap
from pathlib import Path

import pytest

from inspector.addons.host import AddonHost, HookFailed
from inspector.addons.script import Script, ScriptError
from inspector.changes import Changes
from inspector.flow import Flow, FlowRequest, Phase
from inspector.rules import RuleSet


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def test_module_hooks_and_addon_objects_are_found(tmp_path: Path) -> None:
    script = Script(
        write(
            tmp_path / "both.py",
            """
            def request(flow): pass
            class Counter:
                def response(self, flow): pass
                async def request(self, flow): pass
                def requestheaders(self, flow): pass
            addons = [Counter()]
            """,
        )
    )
    script.load()
    labels = {name: [h.label for h in hooks] for name, hooks in script.hooks.items()}
    assert labels == {
        "request": ["both.py:request", "both.py:Counter.request"],
        "response": ["both.py:Counter.response"],
    }
    assert script.notes == ["both.py:Counter.requestheaders is not called by this proxy"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\ndef request(flow)\n    pass\n", "broken.py:2: SyntaxError"),
        ("import no_such_module_here\n", "broken.py:1: ModuleNotFoundError"),
        ("addons = 3\n", "TypeError: `addons` must be a list"),
    ],
)
def test_a_script_that_fails_to_load_says_where(tmp_path: Path, source: str, expected: str) -> None:
    script = Script(write(tmp_path / "broken.py", source))
    with pytest.raises(ScriptError, match=expected):
        script.load()
    assert script.hooks == {}


def test_a_raising_hook_is_contained_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "boom.py",
        """
        def helper():
            return 1 / 0

        async def request(flow):
            await asyncio_sleep()
            helper()

        async def asyncio_sleep():
            import asyncio
            await asyncio.sleep(0)
        """,
    )
    host = AddonHost([path], report=lambda m: None)
    host.load_all()

    async def go() -> HookFailed:
        with pytest.raises(HookFailed) as info:
            await host.call(host.hooks("request")[0], object())
        return info.value

    failed = asyncio.run(go())
    assert isinstance(failed.exc, ZeroDivisionError)
    assert failed.where == "boom.py:3" and failed.label == "boom.py:request"


def test_a_hook_that_blocks_the_loop_is_reported_by_name(tmp_path: Path) -> None:
    path = write(
        tmp_path / "slow.py",
        """
        import time
        def request(flow):
            time.sleep(0.2)
        async def response(flow):
            import asyncio
            await asyncio.sleep(0.3)  # waiting is fine: only steps that hold the loop count
            time.sleep(0.2)
        """,
    )
    reports: list[str] = []
    host = AddonHost([path], report=reports.append, slow=0.1)
    host.load_all()

    async def go() -> None:
        await host.call(host.hooks("request")[0], None)
        await host.call(host.hooks("response")[0], None)

    asyncio.run(go())
    assert len(reports) == 2
    # A sleep can only run late (a loaded machine adds tens of ms); the response hook's
    # 0.3 s await would make it 0.5 s or more if it were counted.
    report = re.compile(r"addon hook (\S+) blocked the event loop for ([\d.]+) s")
    blocked = [report.match(r) for r in reports]
    assert [m.group(1) for m in blocked if m] == ["slow.py:request", "slow.py:response"]
    assert all(0.2 <= float(m.group(2)) < 0.5 for m in blocked if m), reports


def test_saving_the_file_reloads_it_and_a_broken_version_stays_off(tmp_path: Path) -> None:
    path = write(tmp_path / "live.py", "def request(flow):\n    flow.comment = 'v1'\n")
    reports: list[str] = []
    changed = asyncio.Event

    async def go() -> None:
        event = changed()
        host = AddonHost([path], report=lambda m: (reports.append(m), event.set()))
        await host.start()
        watcher = asyncio.get_running_loop().create_task(host.watch(poll=0.05))
        try:
            for source, expect in (
                ("def request(flow):\n    flow.comment = \n", "off until it loads cleanly"),
                ("def request(flow):\n    flow.comment = 'v2'\n", "reloaded"),
            ):
                event.clear()
                path.write_text(source)
                os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 1_000_000))
                async with asyncio.timeout(2):
                    await event.wait()
                assert expect in reports[-1]
                if "off" in expect:
                    assert host.hooks("request") == []
            view = type("V", (), {"comment": ""})()
            await host.call(host.hooks("request")[0], view)
            assert view.comment == "v2"
        finally:
            watcher.cancel()

    asyncio.run(go())
    assert "live.py:2: SyntaxError" in reports[0]


def test_changes_record_originals_and_who_changed_what(tmp_path: Path) -> None:
    path = write(
        tmp_path / "edit.py",
        """
        from inspector import http
        def request(flow):
            flow.request.headers["X-Added"] = "1"
        class Quiet:
            def request(self, flow):
                flow.request.headers.get("host")  # reads only: not a change
        class Mock:
            def request(self, flow):
                if flow.request.path == "/mock":
                    flow.response = http.Response.make(200, b"mocked")
            def response(self, flow):
                1 / 0
        addons = [Quiet(), Mock()]
        """,
    )
    rules = RuleSet.from_options(map_remote=["|old\\.test|new.test"])
    host = AddonHost([path], report=lambda m: None)
    host.load_all()
    changes = Changes(rules, host, body_limit=1024)
    flow = Flow(
        FlowRequest("GET", "http", "old.test", 80, "/mock", headers=[(b"Host", b"old.test")])
    )
    asyncio.run(changes.request(flow))
    assert flow.modified_by == [
        "--map-remote |old\\.test|new.test",
        "edit.py:request",
        "edit.py:Mock.request",
    ]
    assert flow.original_request is not None and flow.original_request.host == "old.test"
    assert flow.original_request.headers == [(b"Host", b"old.test")]
    assert flow.request.header("host") == "new.test" and flow.request.header("x-added") == "1"
    assert flow.response is not None and flow.response.body.data == b"mocked"
    assert flow.original_response is None  # no upstream answered
    assert flow.error is not None and flow.error.phase is Phase.ADDON
    assert flow.error.exc_class == "ZeroDivisionError"
    assert "edit.py:13, in edit.py:Mock.response" in flow.error.message
