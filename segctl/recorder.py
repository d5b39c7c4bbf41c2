"""Live recording into the flow store, off the packet path.

The event log hands every record it writes to `FlowRecorder.tap`, a bounded deque's append: the
whole cost a decision pays. The controller's loop calls `flush` now and then; it turns the
records into observations, resolves labels from the directory of that moment (on the loop's
thread, where the directory changes), and writes the batch through `run_blocking` (an OS thread
under Ryu), so packet-ins are served meanwhile."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .core.flowlog import Observation, observation_of
from .flowstore import FlowStore, StoreError

LOG = logging.getLogger("segctl.recorder")
FLUSH_INTERVAL = 1.0  # seconds between writes
FLUSH_SOONER = 5_000  # records pending that make a write due at once
MAX_PENDING = 200_000  # records held at most while the store is slow or failing; older ones go
PRUNE_INTERVAL = 600.0  # seconds between prunes


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

    def due(self) -> bool:
        return len(self.pending) >= FLUSH_SOONER or self.clock() - self._last_flush >= FLUSH_INTERVAL

    def flush(self) -> int:
        """Writes what is pending (and prunes when that is due). Never raises: a store that
        fails is logged, and the batch counted as lost."""
        now = self._last_flush = self.clock()
        observations = self._take()
        labels = self._labels(observations)
        prune = now - self._last_prune >= PRUNE_INTERVAL
        try:
            written = self.run_blocking(lambda: self._write(observations, labels, now if prune else None))
        except StoreError as exc:
            self.lost += len(observations)
            if str(exc) != self.last_error:
                LOG.warning("flow store: %s; %d decisions not recorded", exc, len(observations))
            self.last_error = str(exc)
            return 0
        if prune:
            self._last_prune = now
        self.last_error = None
        self.written += written
        return written

    def _take(self) -> list[Observation]:
        pending = self.pending
        observations = []
        for _ in range(len(pending)):
            observation = observation_of(pending.popleft())
            if observation is not None:
                observations.append(observation)
        return observations

    def _labels(self, observations: list[Observation]) -> dict[str, Mapping[str, str] | None]:
        names = {o.src for o in observations if o.src_known} | {o.dst for o in observations if o.dst_known}
        return {name: self.labels_of_name(name) for name in names}

    def _write(self, observations: list[Observation], labels: dict, prune_at: float | None) -> int:
        written = self.store.record(observations, labels.get) if observations else 0
        if prune_at is not None:
            self.store.prune(prune_at)
        return written

    def view(self) -> dict:
        """What GET /v1/health shows of the recording."""
        return {"pending": len(self.pending), "written": self.written, "lost": self.lost, "error": self.last_error}
