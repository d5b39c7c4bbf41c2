"""Live recording into the flow store, off the packet path.

The event log hands the JSON text of every decision it records (the text its file gets, encoded
once for both) to `FlowRecorder.tap`, a bounded deque's append: the whole cost a decision pays.
The controller's loop calls `flush` now and then: it joins the queue into JSON arrays, takes the
labels of the directory of that moment (on the loop's thread, where the directory changes), and
hands them to SQLite, which reads the events itself and writes them through `run_blocking` (an
OS thread under Ryu), so packet-ins are served meanwhile."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .flowstore import FlowStore, StoreError

LOG = logging.getLogger("segctl.recorder")
FLUSH_INTERVAL = 1.0  # seconds between writes
FLUSH_SOONER = 1_000  # records pending that make a write due at once
CHUNK = 5_000  # records joined between two pauses of a flush (about 1 ms of the event loop)
MAX_PENDING = 200_000  # records held at most while the store is slow or failing; older ones go
PRUNE_INTERVAL = 600.0  # seconds between prunes
PRUNE_AFTER = 100_000  # decisions written that make a prune due sooner (the caps hold in a flood)

LabelsNow = Callable[[], Mapping[str, Mapping[str, str]]]


class FlowRecorder:
    """Collects the event log's decisions and writes them into `store` in batches. `labels_now`:
    the current directory's labels by host name (the same object while the directory is
    unchanged, which spares the store copying them again)."""

    def __init__(
        self,
        store: FlowStore,
        labels_now: LabelsNow,
        run_blocking: Callable[[Callable[[], Any]], Any],
        clock: Callable[[], float] = time.time,
        max_pending: int = MAX_PENDING,
    ):
        self.store = store
        self.labels_now = labels_now
        self.run_blocking = run_blocking
        self.clock = clock
        self.pending: collections.deque[str] = collections.deque(maxlen=max_pending)
        self.tap: Callable[[str], None] = self.pending.append
        self.written = 0
        self.lost = 0  # decisions a failed write took with it
        self.last_error: str | None = None
        self._last_flush = clock()
        self._last_prune = float("-inf")
        self._written_since_prune = 0
        # Batches handed to a write not done yet, by flush: the writer takes them when it holds
        # the store (a write queued behind the last one at exit finds nothing left to write).
        self._unwritten: dict[int, _Handed] = {}
        self._tokens = 0

    def due(self) -> bool:
        return len(self.pending) >= FLUSH_SOONER or self.clock() - self._last_flush >= FLUSH_INTERVAL

    def flush(self, pause: Callable[[], None] | None = None, last: bool = False) -> int:
        """Writes what is pending (and prunes when that is due). Never raises: a store that
        fails is logged, and the batch counted as lost. `pause` lets the event loop serve
        packet-ins between the chunks of a large batch (hub.sleep(0) under Ryu). `last` (at
        exit) also writes the batches earlier flushes handed over but no thread wrote yet."""
        now = self._last_flush = self.clock()
        events = list(self.pending)  # no other green thread runs between these two lines
        self.pending.clear()
        token = self._tokens = self._tokens + 1
        handed = self._unwritten[token] = _Handed(events)
        while handed.joined < len(events):
            handed.join(CHUNK)
            if pause is not None:
                pause()
        decisions = len(events)
        labels = self.labels_now()  # the directory of this moment (this thread changes it)
        take = self._take_all if last else lambda: self._take(token)
        prune = now - self._last_prune >= PRUNE_INTERVAL or self._written_since_prune >= PRUNE_AFTER
        store = self.store
        try:
            self.run_blocking(lambda: store.write_events(take, labels, now if prune else None))
        except StoreError as exc:
            self._unwritten.pop(token, None)
            self.lost += decisions
            if str(exc) != self.last_error:
                LOG.warning("flow store: %s; %d decisions not recorded", exc, decisions)
            self.last_error = str(exc)
            return 0
        if prune:
            self._last_prune, self._written_since_prune = now, 0
        self.last_error = None
        self.written += decisions
        self._written_since_prune += decisions
        return decisions

    def _take(self, token: int) -> list[str]:
        handed = self._unwritten.pop(token, None)
        return [] if handed is None else handed.batches

    def _take_all(self) -> list[str]:
        """At exit: every batch not written yet, and what a flush paused in the middle of had
        not joined yet."""
        batches = []
        for token in list(self._unwritten):
            handed = self._unwritten.pop(token)
            handed.join(len(handed.events))
            batches += handed.batches
        return batches

    def view(self) -> dict:
        """What GET /v1/health shows of the recording."""
        return {"pending": len(self.pending), "written": self.written, "lost": self.lost, "error": self.last_error}


class _Handed:
    """A flush's decisions on their way from the queue to the store: the batches joined so far
    (each one JSON array of events), and the events not joined yet."""

    __slots__ = ("events", "joined", "batches")

    def __init__(self, events: list[str]):
        self.events = events
        self.joined = 0
        self.batches: list[str] = []

    def join(self, most: int) -> None:
        """Joins up to `most` more events into a batch."""
        chunk = self.events[self.joined : self.joined + most]
        self.joined += len(chunk)
        if chunk:
            self.batches.append(f"[{','.join(chunk)}]")
