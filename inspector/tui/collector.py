"""When the UI's process collects cyclic garbage: full collections between key presses.

Textual's rendered lines (``Strip``) keep themselves in their own caches, so every
repainted line leaves a reference cycle behind. A line lives as long as it is on
screen, long enough to reach the oldest generation, where only a full collection frees
it. Left to CPython's thresholds, full collections came twice a second under 1,000
flows/s, each a pause of ~100 ms (the whole unscanned heap) landing on key presses.

While the app runs, this module instead:

- turns automatic full collections off (a large threshold stays as a safety net for
  when the UI cannot run, e.g. while ``$EDITOR`` has the terminal);
- while the user is active, keeps young collections small and frequent (a gen-1 pause
  stays around a millisecond); while nobody types, makes them rare as the runtime does
  for a proxy (a finished flow dies before it is scanned: +10% proxy requests per CPU
  second in bench_tui_proxy), their ~30 ms pauses hurting no key press;
- runs a full collection itself from a timer of the UI, put off while keys are being
  pressed (so a key rarely runs into one) and while the user waits for the list's answer
  to a filter or sort (``tick(busy=True)``), every ``MIN_INTERVAL`` while the user is
  active. Each walks every live object (Textual's, the proxy's, the newest rows),
  ~100-200 ms with 1,000 flows/s, whatever the garbage; so while nobody types they
  come as rarely as a CPU ``BUDGET`` asks (up to ``MAX_INTERVAL`` apart), each one
  holding the interpreter against the proxy thread;
- freezes what survives such a collection once the session is loaded and every
  ``FREEZE_EVERY`` new flows: frozen objects are never scanned again (the list itself
  keeps row ids in arrays, which the collector never walks). Right after a full
  collection there is no garbage to freeze by mistake.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

ACTIVE_THRESHOLDS = (700, 10)  # CPython's defaults: gen-1 pauses around a millisecond
IDLE_THRESHOLDS = (10_000, 10)  # inspector.runtime's while a proxy runs
# Allocations (roughly) before CPython runs a full collection by itself: a safety net
# for when the UI cannot run its own (its timers stop while $EDITOR has the terminal);
# seconds of a flood, longer than the UI ever waits between two of its own.
SAFETY_ALLOCATIONS = 15_000_000


def thresholds(young: tuple[int, int]) -> tuple[int, int, int]:
    """gc thresholds: ``young`` for generations 0 and 1, the safety net for generation 2."""
    return (*young, max(10, SAFETY_ALLOCATIONS // (young[0] * young[1])))


BUDGET = 0.03  # share of the time full collections may take while nobody types
MIN_INTERVAL = 2.0  # seconds between full collections while the user is active (half
# the CPU of one a second, bench_tui: 12% -> 8%, for pauses ~15% longer)...
MAX_INTERVAL = 3.0  # ...and at most while not (garbage piles up meanwhile)
ACTIVE = 5.0  # seconds after a key press or click the user counts as active
QUIET_AFTER_INPUT = 0.05  # a due collection waits this long after a key press or click...
MAX_DEFER = 2.0  # ...but not longer than this
# New flows between freezes. A freeze takes Textual's live objects out of every later
# full collection (~50-100 ms of walking less), but keeps those of them that die later
# in cycles (cached lines: ~40,000 objects, a few MB) until the app exits.
FREEZE_EVERY = 20_000


class Collector:
    """Paces the cyclic garbage collector for the UI (one per app; start/stop on mount)."""

    def __init__(
        self,
        *,
        quiet: float = QUIET_AFTER_INPUT,
        freeze_every: int = FREEZE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet = quiet
        self.freeze_every = freeze_every
        self.clock = clock
        self.interval = MIN_INTERVAL  # until the next full collection while nobody types
        self.collections = 0  # full collections run by tick()
        self._saved: tuple[int, int, int] | None = None
        self._last_full = clock()
        self._last_input = float("-inf")
        self._frozen_rows = 0
        self._froze = False
        self._young: tuple[int, int] = IDLE_THRESHOLDS

    def start(self) -> None:
        """Take over the thresholds (restored by stop())."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            self._young = IDLE_THRESHOLDS
            gc.set_threshold(*thresholds(self._young))
        self._last_full = self.clock()

    def _set_young(self, young: tuple[int, int]) -> None:
        if self._saved is not None and young != self._young:
            self._young = young
            gc.set_threshold(*thresholds(young))

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
        self._last_input = self.clock()
        self._set_young(ACTIVE_THRESHOLDS)

    @property
    def active(self) -> bool:
        """True while the user counts as active (a key press or click in ACTIVE seconds)."""
        return self.clock() - self._last_input < ACTIVE

    def tick(self, rows: int, *, busy: bool = False) -> bool:
        """Run a full collection when one is due; ``rows`` is the list's row count, ``busy``
        says the user waits for something (a filter's answer): put off like a key press.

        True when it collected.
        """
        now = self.clock()
        active = self.active
        if not active:
            self._set_young(IDLE_THRESHOLDS)
        overdue = now - self._last_full - (MIN_INTERVAL if active else self.interval)
        if overdue < 0:
            return False
        waiting = busy or now - self._last_input < self.quiet
        if waiting and overdue < MAX_DEFER:
            return False
        if rows - self._frozen_rows >= self.freeze_every:
            self.collect_and_freeze(rows)
        else:
            gc.collect()
        self._last_full = self.clock()
        took = self._last_full - now
        self.interval = min(MAX_INTERVAL, max(MIN_INTERVAL, took / BUDGET))
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
