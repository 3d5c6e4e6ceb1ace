"""Edit a held request or response: in a TextArea screen, or in $EDITOR when it is set."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult, SuspendNotSupported
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from inspector.tui import keys
from inspector.tui.editing import EditError, apply_text, message_text

if TYPE_CHECKING:
    from inspector.flow import Flow
    from inspector.tui.app import InspectorApp


def open_editor(app: InspectorApp, flow_id: str) -> None:
    """Edit held flow ``flow_id`` with $EDITOR if set, else in the built-in editor screen."""
    flow = app.session.held_flow(flow_id)
    stage = app.session.stage_of(flow_id)
    if flow is None or stage is None:
        app.notify("that flow is no longer held", severity="warning")
        return
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor or not _edit_externally(app, flow, stage, editor):
        app.push_screen(InterceptEditorScreen(flow, stage))


def _edit_externally(app: InspectorApp, flow: Flow, stage: str, editor: str) -> bool:
    """Edit in ``editor`` with the app suspended; False when the terminal cannot be handed over."""
    fd, name = tempfile.mkstemp(prefix="inspector-edit-", suffix=".http")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(message_text(flow, stage))
        try:
            with app.suspend():
                result = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except SuspendNotSupported:  # headless or web driver: use the built-in editor
            return False
        if result.returncode != 0:
            app.notify(
                f"{editor} exited with {result.returncode}: nothing changed", severity="warning"
            )
            return True
        apply_text(flow, path.read_text(encoding="utf-8"), stage)
    except EditError as e:
        app.notify(f"not applied: {e}", title="Edit", severity="error", timeout=10)
    except OSError as e:
        app.notify(f"cannot run {editor!r}: {e}", title="Edit", severity="error", timeout=10)
    else:
        app.notify(f"{stage} edited: a resumes it", title="Edit")
        app.flows_changed()
    finally:
        path.unlink(missing_ok=True)
    return True


class InterceptEditorScreen(Screen):
    """The held message as HTTP text; ctrl+s applies, esc discards."""

    BINDINGS = keys.EDITOR_KEYS

    app: InspectorApp

    def __init__(self, flow: Flow, stage: str) -> None:
        super().__init__()
        self.flow = flow
        self.stage = stage

    def compose(self) -> ComposeResult:
        stage = self.stage
        yield Static(
            f"Editing the held {stage} of {self.flow.request.method} {self.flow.request.url}: "
            "start line, headers, a blank line, then the body.",
            id="editor-title",
        )
        yield TextArea(
            message_text(self.flow, self.stage),
            id="editor",
            show_line_numbers=True,
            tab_behavior="indent",
        )
        yield Static("", id="editor-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def _apply(self) -> bool:
        if self.app.session.held_flow(self.flow.id) is None:
            self.query_one("#editor-error", Static).update(
                "this flow is no longer held: nothing to apply"
            )
            return False
        try:
            apply_text(self.flow, self.query_one(TextArea).text, self.stage)
        except EditError as e:
            self._error(f"not applied: {e}")
            return False
        return True

    def _error(self, message: str) -> None:
        self.query_one("#editor-error", Static).update(message)

    def action_save(self) -> None:
        if self._apply():
            self.app.pop_screen()
            self.app.notify(f"{self.stage} edited: a resumes it", title="Edit")
            self.app.flows_changed()

    def action_save_resume(self) -> None:
        if self._apply():
            self.app.pop_screen()
            self.app.resume([self.flow.id])
