"""Live recording into the flow store, off the packet path.

The event log hands every record it writes to `FlowRecorder.tap`, a bounded deque's append: the
whole cost a decision pays. The controller's loop calls `flush` now and then: it turns the
queue into one batch (with the labels of the directory of that moment, on the loop's thread,
where the directory changes), and SQLite writes it through `run_blocking` (an OS thread under
Ryu), so packet-ins are served meanwhile."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .core.flowlog import observation_of
from .flowstore import FlowStore, StoreError, encode_batch

LOG = logging.getLogger("segctl.recorder")
FLUSH_INTERVAL = 1.0  # seconds between writes
FLUSH_SOONER = 1_000  # records pending that make a write due at once
CHUNK = 200  # records encoded between two pauses of a flush (each about 1 ms of the event loop)
MAX_PENDING = 200_000  # records held at most while the store is slow or failing; older ones go
PRUNE_INTERVAL = 600.0  # seconds between prunes
PRUNE_AFTER = 100_000  # decisions written that make a prune due sooner (the caps hold in a flood)


class FlowRecorder:
    """Collects the event log's records and writes their decisions into `store` in batches."""

    def __init__(
        self,
        store: FlowStore,
        labels_of_name: Callable[[str], Mapping[str, str] | None],
        run_blocking: Callable[[Callable[[], Any]], Any],
        clock: Callable[[], float] = time.time,
        max_pending: int = MAX_PENDING,
    ):
        self.store = store
        self.labels_of_name = labels_of_name
        self.run_blocking = run_blocking
        self.clock = clock
        self.pending: collections.deque[dict] = collections.deque(maxlen=max_pending)
        self.tap: Callable[[dict], None] = self.pending.append
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
        # Encoded here, with the labels of the directory of this moment (this thread changes it);
        # the writing thread then only runs SQLite, which lets the event loop run meanwhile.
        token = self._tokens = self._tokens + 1
        handed = self._unwritten[token] = _Handed(events)
        decisions = 0
        while handed.encoded < len(events):
            decisions += handed.encode(CHUNK, self.labels_of_name)
            if pause is not None:
                pause()
        take = self._take_all if last else lambda: self._take(token)
        prune = now - self._last_prune >= PRUNE_INTERVAL or self._written_since_prune >= PRUNE_AFTER
        store = self.store
        try:
            self.run_blocking(lambda: store.write_batch(take, now if prune else None))
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
        not encoded yet."""
        batches = []
        for token in list(self._unwritten):
            handed = self._unwritten.pop(token)
            handed.encode(len(handed.events), self.labels_of_name)
            batches += handed.batches
        return batches

    def view(self) -> dict:
        """What GET /v1/health shows of the recording."""
        return {"pending": len(self.pending), "written": self.written, "lost": self.lost, "error": self.last_error}


class _Handed:
    """A flush's decisions on their way from the queue to the store: the batches encoded so
    far, and the events not encoded yet."""

    __slots__ = ("events", "encoded", "batches")

    def __init__(self, events: list[dict]):
        self.events = events
        self.encoded = 0
        self.batches: list[str] = []

    def encode(self, most: int, labels_of_name: Callable[[str], Mapping[str, str] | None]) -> int:
        """Encodes up to `most` more events into a batch; returns how many were decisions."""
        chunk = self.events[self.encoded : self.encoded + most]
        self.encoded += len(chunk)
        observations = [o for o in map(observation_of, chunk) if o is not None]
        if observations:
            self.batches.append(encode_batch(observations, labels_of_name))
        return len(observations)
