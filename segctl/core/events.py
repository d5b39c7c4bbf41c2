"""The decision and action log: a bounded in-memory ring for the API, and JSON lines on disk."""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger("segctl.events")
_encode = json.JSONEncoder(sort_keys=True).encode  # one encoder, not one per event
# Per-connection decisions go to the events file and, with --verbose, to the log: at thousands
# per second (a scan) a line each on stderr would cost more than the decisions themselves.
_LEVELS = {
    "allow": logging.DEBUG,
    "deny": logging.DEBUG,
    "expire": logging.DEBUG,
    "revoke": logging.DEBUG,
    "quarantine": logging.WARNING,
    "flood": logging.WARNING,
    "spoof": logging.WARNING,
    "directory": logging.WARNING,
}


class EventLog:
    """Records one JSON object per decision or action: allow, deny, quarantine, release, reload…"""

    def __init__(self, path: str | None = None, keep: int = 10000, clock: Callable[[], float] | None = None):
        import time

        self._clock = clock or time.time
        self._ring: collections.deque = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        # Block-buffered: the controller flushes it every 0.1 s and on exit (a line-buffered
        # file costs a write(2) per decision, which at thousands per second shows).
        self._file = open(path, "a", encoding="utf-8", buffering=1 << 16) if path else None  # noqa: SIM115 - lives as long as the log

    def record(self, kind: str, now: float | None = None, **fields: Any) -> dict:
        event = {"time": round(self._clock() if now is None else now, 6), "kind": kind}
        event.update((key, value) for key, value in fields.items() if value is not None)
        with self._lock:
            self._ring.append(event)
            if self._file is not None:
                self._file.write(_encode(event) + "\n")
        level = _LEVELS.get(kind, logging.INFO)
        if LOG.isEnabledFor(level):
            LOG.log(level, "%s %s", kind, " ".join(f"{k}={v}" for k, v in fields.items() if v is not None))
        return event

    def latest(self, limit: int = 100, kind: str | None = None) -> list[dict]:
        with self._lock:
            events = [e for e in self._ring if kind is None or e["kind"] == kind]
        return events[-limit:] if limit > 0 else []

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
