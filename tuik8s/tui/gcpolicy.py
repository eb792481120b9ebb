"""Keeping Python's cyclic garbage collector from stalling the screen.

An informer cache holds about a hundred container objects per pod: at 10,000 pods, a
million objects that every full pass of the cyclic collector walks, 0.2-0.5 s during
which nothing is drawn (measured by bench/tui.py: the only key presses over 100 ms under
1,000 pod updates a second were the ones that met a full pass). Those objects are JSON,
acyclic, freed by reference counting; the collector has nothing to find in them. So they
are frozen out of its sight (`gc.freeze`): at start-up (modules, classes: never garbage),
after each first list, and again after every `FREEZE_EVERY` watch events, since each
update brings a fresh object tree. A full pass then walks tens of thousands of objects
(a few ms), not a million.

While a first list is being decoded (a million new objects in a second) the collector is
held off altogether (`hold`/`release`): every pass it would make then finds nothing.

What freezing risks is keeping cyclic garbage that exists at that moment (the widgets of
a screen just closed) until the process ends. A young collection runs before each freeze,
and once the user has been idle for `IDLE_SECONDS`, at most every `FULL_EVERY` seconds,
everything is unfrozen and collected in one pass nobody is waiting on.
"""

from __future__ import annotations

import gc
import time

FREEZE_EVERY = 500
IDLE_SECONDS = 20.0
FULL_EVERY = 600.0

_events = 0
_holds = 0
_last_input = time.monotonic()
_last_full = time.monotonic()


def freeze() -> None:
    """Collect the young generations, then freeze everything that survives."""
    global _events
    gc.collect(1)
    gc.freeze()
    _events = 0


def hold() -> None:
    """Pause the collector (a big list is arriving); pair with `release`."""
    global _holds
    _holds += 1
    gc.disable()


def release() -> None:
    """End a `hold`: freeze what arrived, and collect again when no hold is left."""
    global _holds
    if _holds <= 0:
        return
    _holds -= 1
    if _holds == 0:
        freeze()
        gc.enable()


def note_event() -> None:
    """One watch event reached a view; freeze the new objects every FREEZE_EVERY."""
    global _events
    _events += 1
    if _events >= FREEZE_EVERY:
        freeze()


def note_input() -> None:
    global _last_input
    _last_input = time.monotonic()


def maybe_collect_when_idle() -> bool:
    """Unfreeze and collect everything once, if the user is idle and it is time."""
    global _last_full
    now = time.monotonic()
    if now - _last_input < IDLE_SECONDS or now - _last_full < FULL_EVERY:
        return False
    _last_full = now
    gc.unfreeze()
    gc.collect()
    freeze()
    return True
