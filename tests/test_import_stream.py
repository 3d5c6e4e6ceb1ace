"""`inspector import` streams: a HAR is read one entry at a time (flat memory from 10,000 to
100,000 entries), whatever the layout of its JSON, with json's own errors and positions."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from inspector import har_stream
from inspector.export.har import HarError, flows_from_entries, flows_from_har
from inspector.har_stream import JsonSyntaxError, har_entries
from inspector.store import Store
from tests.cli_fixtures import inspector_command, inspector_env, on_a_terminal
from tests.replay_fixtures import read_session

SMALL = 10_000
BIG = 100_000


def _entry(i: int, body: str = "") -> dict:
    return {
        "startedDateTime": "2026-01-02T03:04:05.5Z",
        "time": 12.5 + i,
        "request": {
            "method": "POST",
            "url": f"http://127.0.0.1:9/items/{i}?q=%5B%7B",
            "headers": [{"name": "X-Tricky", "value": 'a]}[{"\\ ],{'}],
            "postData": {"mimeType": "text/plain", "text": body or f'{{"n": [{i}]}} "quoted" ]'},
        },
        "response": {
            "status": 200,
            "headers": [{"name": "Content-Type", "value": "text/plain; charset=utf-8"}],
            "content": {"size": 9, "mimeType": "text/plain", "text": "h\u00e9 \u2603 \U0001f600"},
        },
    }


def _write_har(path: Path, n: int) -> Path:
    """A HAR of ``n`` entries written a line at a time (the test must not hold it either)."""
    with path.open("w") as f:
        f.write('{"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},\n')
        f.write('"entries": [\n')
        for i in range(n):
            f.write(("," if i else "") + json.dumps(_entry(i)) + "\n")
        f.write('], "pages": [{"id": "p", "title": "]}"}]}}\n')
    return path


def _entries(text: str | bytes, encoding: str = "utf-8") -> list[object]:
    data = text.encode(encoding) if isinstance(text, str) else text
    return list(har_entries(io.BytesIO(data)))


def _layouts() -> list[str]:
    a, b = _entry(0), _entry(1, body="x" * 5000)  # b is larger than a small chunk
    entries = json.dumps([a, b])
    pages = '"pages": [{"id": "page_1", "title": "a \\" ] } [ {"}]'
    return [
        json.dumps({"log": {"entries": [a, b]}}),
        json.dumps({"log": {"entries": [a, b]}}, indent=4),  # newlines and runs of spaces
        f'{{"log": {{{pages}, "creator": {{"name": "x"}}, "entries": {entries}}}}}',
        f'{{"log": {{"entries": {entries}, {pages}, "comment": "}}]"}}, "x": [1, {{}}]}}',
        f' \r\n\t{{ "other" : [ [], {{}} , "log" ] , "log" :{{"entries":{entries} }} }} \n',
        json.dumps({"log": {"entries": [a, b]}}, ensure_ascii=False),  # raw multi-byte UTF-8
        '{"log": {"entries": [ ]}}',
    ]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 65536])
@pytest.mark.parametrize("layout", range(7))
def test_every_layout_reads_as_json_loads_does(layout: int, chunk: int, monkeypatch) -> None:
    text = _layouts()[layout]
    monkeypatch.setattr(har_stream, "CHUNK", chunk)  # entries and characters split anywhere
    assert _entries(text) == json.loads(text)["log"]["entries"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_encodings_json_accepts(encoding: str, monkeypatch) -> None:
    text = _layouts()[5]
    monkeypatch.setattr(har_stream, "CHUNK", 5)
    assert _entries(text, encoding) == json.loads(text.encode(encoding))["log"]["entries"]


BROKEN = [
    '{"log": {"entries": [{"a": 1}, {"b": 2}',  # cut short
    '{"log": {"entries": [{"a": 1}\n,\n{"b": 2,}]}}',  # a trailing comma
    '{"log": {"entries": [{"a": 1}]}} {"more": 1}',  # data after the end
    '{"log": {"entries": [{"a": 1} {"b": 2}]}}',  # a missing comma
    '{"log": {"entries": [], "pages": [tru]}}',
    '{"log": {"entries": [{"a": "\x01"}]}}',  # a control character in a string
    '{"log" {"entries": []}}',
    "{'log': {}}",
    '{"log": {"entries": [1.5e]}}',
    "",
]


@pytest.mark.parametrize("chunk", [2, 65536])
@pytest.mark.parametrize("text", BROKEN)
def test_broken_json_is_reported_where_json_loads_says(text: str, chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(har_stream, "CHUNK", chunk)
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(JsonSyntaxError) as got:
        _entries("\n\n  " + text)  # two lines down, two columns in: positions are the file's
    e = expected.value
    assert (got.value.msg, got.value.lineno) == (e.msg, e.lineno + 2)
    assert got.value.colno == e.colno + (2 if e.lineno == 1 else 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "the top level must be an object"),
        ('{"log": []}', "the top level must be an object"),
        ('{"version": 1}', "the top level must be an object"),
        ('{"log": {"pages": []}}', '"log.entries" is missing or not a list'),
        ('{"log": {"entries": {}}}', '"log.entries" is missing or not a list'),
        ('{"log": {"entries": [], "entries": []}}', '"log.entries" appears twice'),
    ],
)
def test_not_a_har_outline(text: str, message: str) -> None:
    with pytest.raises(HarError, match=message.replace(".", r"\.")):
        _entries(text)


def test_a_bad_entry_after_good_ones_names_it_and_leaves_nothing(tmp_path: Path) -> None:
    entries = [_entry(i) for i in range(1200)]  # past a flush to the session file
    entries[1100]["request"]["method"] = "GE T"
    har = tmp_path / "late.har"
    har.write_text(json.dumps({"log": {"entries": entries}}))
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [*inspector_command(), "import", str(har), "-o", str(out / "s.db")],
        capture_output=True, text=True, timeout=120, env=inspector_env(),
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{har}: entry 1100: request.method is not an HTTP method" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(out.iterdir()) == []  # all or nothing: the good entries are not half-imported


def test_reading_ids_repeated_in_the_har_get_new_ones(tmp_path: Path) -> None:
    entry = {**_entry(0), "_id": "0123456789abcdef0123456789abcdef"}
    har = tmp_path / "twice.har"
    har.write_text(json.dumps({"log": {"entries": [entry] * 3}}))
    done = subprocess.run(
        [*inspector_command(), "import", str(har), "-o", str(tmp_path / "s.db")],
        capture_output=True, text=True, timeout=120, env=inspector_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    flows = read_session(tmp_path / "s.db")
    assert len({f.id for f in flows}) == 3
    assert entry["_id"] in {f.id for f in flows}


def _reading_peak(har: Path) -> tuple[int, int]:
    """Entries read and the peak of Python memory (bytes) while reading them."""
    tracemalloc.start()
    try:
        with har.open("rb") as raw:
            count = sum(1 for _ in har_entries(raw))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_memory_stays_flat_from_10_000_to_100_000_entries(tmp_path: Path) -> None:
    small, small_peak = _reading_peak(_write_har(tmp_path / "small.har", SMALL))
    big, big_peak = _reading_peak(_write_har(tmp_path / "big.har", BIG))
    assert (small, big) == (SMALL, BIG)
    # json.load of the 70 MB file holds about 270 MB of objects. One entry at a time, the
    # window holds a chunk or two of text (4 bytes a character once it has an emoji) and
    # one entry: the same bound for 7 MB and for 70 MB.
    bound = 1536 * 1024
    assert small_peak < bound and big_peak < bound, (small_peak, big_peak)


MEASURE = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True)
sys.stderr.buffer.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _import_peak_kib(har: Path, session: Path) -> int:
    command = [*inspector_command(), "import", str(har), "-o", str(session)]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        capture_output=True, text=True, timeout=900, env=inspector_env(),
    )  # fmt: skip
    status, peak = done.stdout.split()
    assert status == "0", done.stderr
    return int(peak)


def test_import_memory_stays_flat_end_to_end(tmp_path: Path) -> None:
    """The whole command, session writing included (the store's queue is kept short)."""
    small = _import_peak_kib(_write_har(tmp_path / "small.har", SMALL), tmp_path / "small.db")
    big = _import_peak_kib(_write_har(tmp_path / "big.har", BIG), tmp_path / "big.db")
    assert big - small < 16 * 1024, (small, big)
    with Store(tmp_path / "big.db", readonly=True) as store:
        assert store.count() == BIG
        assert store.count(f"~u /items/{BIG - 1}\\?") == 1


def test_same_flows_as_reading_the_whole_document(tmp_path: Path) -> None:
    har = _write_har(tmp_path / "h.har", 50)
    streamed = list(flows_from_entries(har_entries(har.open("rb"))))
    whole = flows_from_har(json.loads(har.read_text()))
    assert [(f.request, f.response) for f in streamed] == [(f.request, f.response) for f in whole]


def test_closed_stdout_and_no_terminal(tmp_path: Path) -> None:
    har = _write_har(tmp_path / "h.har", 20)
    proc = subprocess.Popen(
        [*inspector_command(), "import", str(har), "-o", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=inspector_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # `| head` that went away at once
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    # Not a terminal: the summary line alone, no bar, no control codes.
    assert err.decode() == f"inspector: imported 20 exchanges into {tmp_path / 's.db'}\n"


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    har = _write_har(tmp_path / "h.har", 3000)
    session = tmp_path / "s.db"
    status, screen = on_a_terminal([*inspector_command(), "import", str(har), "-o", str(session)])
    assert status == 0, screen
    assert "importing" in screen and "MB" in screen  # the bar, counting the file's bytes
    assert f"imported 3000 exchanges into {session}" in screen
