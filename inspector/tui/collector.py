"""When the UI's process collects cyclic garbage: full collections between key presses.

Textual's rendered lines (``Strip``) keep themselves in their own caches, so every
repainted line leaves a reference cycle behind. A line lives as long as it is on
screen, long enough to reach the oldest generation, where only a full collection frees
it. Left to CPython's thresholds, full collections came twice a second under 1,000
flows/s, each a pause of ~100 ms (the whole unscanned heap) landing on key presses.

While the app runs, this module instead:

- turns automatic full collections off (a large threshold stays as a safety net for
  when the UI cannot run, e.g. while ``$EDITOR`` has the terminal) and keeps young
  collections small and frequent (each walks what it holds, cache-cold when large);
- runs a full collection itself every ``interval``, from a timer of the UI, put off
  while the user is pressing keys, so each one frees a second's garbage only;
- freezes what survives such a collection once enough new list rows accumulated:
  rows live as long as the session, and frozen objects are never scanned again. Right
  after a full collection there is no garbage to freeze by mistake.
"""

from __future__ import annotations

import gc
import time

YOUNG_THRESHOLDS = (700, 10)  # CPython's defaults: gen-1 pauses stay around a millisecond
SAFETY_THRESHOLD = 1000  # gen-1 collections before an automatic full one (UI not running)
FULL_INTERVAL = 1.0  # seconds between full collections
QUIET_AFTER_INPUT = 0.05  # a full collection waits this long after a key press or click...
MAX_DEFER = 2.0  # ...but never longer than this since the last one
# New list rows between freezes. Each freeze also keeps whatever cyclic structures
# happen to be alive then (Textual's cached lines, ~40,000 objects, a few MB) for as
# long as the app runs; 50,000 rows (~20 MB of metadata) make that a small share,
# while a full collection walks at most ~15 ms of unfrozen rows.
FREEZE_EVERY = 50_000


class Collector:
    """Paces the cyclic garbage collector for the UI (one per app; start/stop on mount)."""

    def __init__(
        self, *, interval: float = FULL_INTERVAL, freeze_every: int = FREEZE_EVERY
    ) -> None:
        self.interval = interval
        self.freeze_every = freeze_every
        self.collections = 0  # full collections run by tick()
        self._saved: tuple[int, int, int] | None = None
        self._last_full = time.monotonic()
        self._last_input = 0.0
        self._frozen_rows = 0
        self._froze = False

    def start(self) -> None:
        """Take over the thresholds (restored by stop())."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(*YOUNG_THRESHOLDS, SAFETY_THRESHOLD)
        self._last_full = time.monotonic()

    def stop(self) -> None:
        """Give the thresholds back, and what was frozen to the collector again."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
        if self._froze:
            gc.unfreeze()
            self._froze = False

    def input_seen(self) -> None:
        """The user pressed a key or clicked: more may follow, keep pauses away."""
        self._last_input = time.monotonic()

    def tick(self, rows: int) -> bool:
        """Run a full collection when one is due; ``rows`` is the list's row count.

        True when it collected.
        """
        now = time.monotonic()
        since = now - self._last_full
        if since < self.interval:
            return False
        if now - self._last_input < QUIET_AFTER_INPUT and since < MAX_DEFER:
            return False
        if rows - self._frozen_rows >= self.freeze_every:
            self.collect_and_freeze(rows)
        else:
            gc.collect()
        self._last_full = time.monotonic()
        self.collections += 1
        return True

    def collect_and_freeze(self, rows: int) -> None:
        """A full collection, then every surviving object out of the collector's sight.

        With 100,000 rows a full collection would otherwise walk them all, tens of
        milliseconds. Rows hold no cycles, so reference counting still frees deleted
        ones; collecting first keeps garbage from being frozen with them.
        """
        gc.collect()
        gc.freeze()
        self._froze = True
        self._frozen_rows = rows
