"""The decision and action log: a bounded in-memory ring for the API, and JSON lines on disk
(rotated by size). Repeated denials are folded: one record per source and reason per interval."""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .flowlog import DECISION_KINDS
from .textsafe import key_values

LOG = logging.getLogger("segctl.events")
# One encoder, not one per event. ASCII only (ensure_ascii): control characters and U+2028/2029
# are escaped, so a record is always exactly one line of the file. JSONEncoder.encode builds its
# C encoder again for every call; the same C encoder, built once, writes the same text.
_ENCODER = json.JSONEncoder(sort_keys=True)
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # (None without the C accelerator)
_C_ENCODER = (
    None
    if _make_c_encoder is None
    else _make_c_encoder(
        None,  # no markers for circular references: records are flat
        _ENCODER.default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        ": ",
        ", ",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
)


def _encode(event: dict) -> str:
    if _C_ENCODER is None:
        return _ENCODER.encode(event)
    return "".join(_C_ENCODER(event, 0))


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

# Records put off (record_later: a quarantine or reload revoking thousands of connections) and
# denials are turned into JSON when the file is flushed (every 0.1 s, and on exit); others as
# they are recorded. Past this many records waiting, they are written at once.
UNWRITTEN_LIMIT = 50_000
MAX_BYTES = 100 * 1024 * 1024  # events.jsonl is rotated before it passes this (0: never)
KEEP_FILES = 5  # rotated files kept: events.jsonl.1 (newest) … .5
FOLDED_KINDS = frozenset({"deny"})
REPEAT_INTERVAL = 10.0  # seconds
# Sources and reasons being folded at once. A flood of forged MACs makes a new key per frame;
# past this many the oldest is summed up early rather than the table growing without end.
REPEAT_KEYS = 10_000


class _Window:
    __slots__ = ("start", "repeats", "last")

    def __init__(self, start: float):
        self.start = start
        self.repeats = 0
        self.last: dict = {}


class Repeats:
    """Folds repeated denials. The first of a (source, reason) in an interval passes at once, as
    any record does; identical ones within the interval are only counted, and when it is over one
    summary is written: the last of them, with `repeats` (how many were folded) and `until` (when
    the last was). Source is the sender's MAC, else its name; reason the `reason` field."""

    def __init__(self, interval: float = REPEAT_INTERVAL, max_keys: int = REPEAT_KEYS):
        self.interval = interval
        self.max_keys = max_keys
        # Oldest window first: the due ones are always at the front.
        self._windows: collections.OrderedDict[tuple, _Window] = collections.OrderedDict()

    def offer(self, event: dict) -> list[dict]:
        """The records to write for EVENT, now: the summaries due, then EVENT unless folded."""
        now = event["time"]
        records = self.due(now)
        key = self._key(event)
        if key is None:
            return records + [event]
        window = self._windows.get(key)
        if window is not None and now - window.start < self.interval:
            window.repeats += 1
            window.last = event
            return records
        if window is not None:  # over, but behind one started earlier (a clock step back)
            records += self._close(key, now)
        if len(self._windows) >= self.max_keys:
            records += self._close(next(iter(self._windows)), now)
        self._windows[key] = _Window(now)
        return records + [event]

    def due(self, now: float) -> list[dict]:
        """Summaries of the intervals over at NOW."""
        records: list[dict] = []
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if now - window.start < self.interval:
                break
            records += self._close(key, now)
        return records

    def drain(self, now: float) -> list[dict]:
        """Every pending summary (at exit)."""
        records: list[dict] = []
        while self._windows:
            records += self._close(next(iter(self._windows)), now)
        return records

    def _close(self, key: tuple, now: float) -> list[dict]:
        window = self._windows.pop(key)
        if not window.repeats:
            return []
        # Written now (the file stays in time order); `until` says when the last one was.
        return [{**window.last, "time": now, "repeats": window.repeats, "until": window.last["time"]}]

    @staticmethod
    def _key(event: dict) -> tuple | None:
        if event["kind"] not in FOLDED_KINDS or event.get("would_deny"):
            return None  # (a monitored connection was forwarded: recorded like an allowed one)
        source = event.get("src_mac") or event.get("src")
        reason = event.get("reason")
        return None if source is None or reason is None else (source, reason)


class RotatingFile:
    """An append-only file of lines. Before a line would take it past MAX_BYTES it is renamed
    PATH.1 (older ones shift up to PATH.KEEP, the oldest is deleted) and a new one started.
    Lines are never split: one longer than MAX_BYTES gets a file of its own."""

    def __init__(self, path: str, max_bytes: int = MAX_BYTES, keep: int = KEEP_FILES):
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._file = self._open()
        self._size = os.fstat(self._file.fileno()).st_size  # a file from the last run counts

    def _open(self):
        # Block-buffered: the controller flushes it every 0.1 s and on exit (a line-buffered
        # file costs a write(2) per decision, which at thousands per second shows).
        return open(self.path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115 - lives as long as the log

    def write(self, line: str) -> None:
        size = len(line.encode("utf-8"))
        if self.max_bytes and self._size and self._size + size > self.max_bytes:
            self._rotate()
        self._file.write(line)
        self._size += size

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self.keep - 1, 0, -1):
            if os.path.exists(f"{self.path}.{n}"):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")  # onto .KEEP: the oldest goes
        if self.keep:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.remove(self.path)
        self._file = self._open()
        self._size = 0

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class EventLog:
    """Records one JSON object per decision or action: allow, deny, quarantine, release, reload…
    The ring (what the API shows) and the file get the same records."""

    def __init__(
        self,
        path: str | None = None,
        keep: int = 10000,
        clock: Callable[[], float] | None = None,
        *,
        max_bytes: int = MAX_BYTES,
        keep_files: int = KEEP_FILES,
        repeat_interval: float = REPEAT_INTERVAL,
        repeat_keys: int = REPEAT_KEYS,
    ):
        import time

        self._clock = clock or time.time
        self._ring: collections.deque = collections.deque(maxlen=keep)
        self._repeats = Repeats(repeat_interval, repeat_keys)
        # Re-entrant: SIGTERM's handler closes the log, perhaps while this thread is recording.
        self._lock = threading.RLock()
        self._file = RotatingFile(path, max_bytes, keep_files) if path else None
        # Recorded, not yet in the file (see UNWRITTEN_LIMIT): the record, or its text when it
        # was encoded as it was recorded (see record).
        self._unwritten: list[dict | str] = []
        self._later: collections.deque[tuple[str, float, Iterable[dict]]] = collections.deque()  # record_later's
        # Handed every decision (allow, deny) as recorded, before folding (the flow store counts
        # each decision on its own edge; a folded summary names only the last one's destination),
        # as the JSON text the file gets: encoded once, for both.
        self.tap: Callable[[str], None] | None = None

    def record(self, kind: str, now: float | None = None, **fields: Any) -> dict:
        if self._later:
            self._catch_up()
        event = {"time": round(self._clock() if now is None else now, 6), "kind": kind}
        event.update((key, value) for key, value in fields.items() if value is not None)
        tap = self.tap
        text = None
        if tap is not None and kind in DECISION_KINDS:
            text = _encode(event)
            tap(text)
        elif self._file is not None and kind not in FOLDED_KINDS:
            # Encoded now, a record at a time, not hundreds at the next flush: the flush would
            # hold every switch's packet-ins up for a millisecond or two, ten times a second.
            # (A denial may be folded, never written: its text waits until it is.)
            text = _encode(event)
        with self._lock:
            written = self._write(self._repeats.offer(event), event, text)
        _log(written)
        return event

    def record_later(self, kind: str, now: float | None, many: Iterable[dict]) -> None:
        """record(kind, now, **fields) for each `fields` of `many`, in order, put off until the
        log is next used (a record, a read, the flush the controller does every 0.1 s): a
        quarantine or a reload revokes thousands of connections at once, and the switches
        need not wait for their records. `many` is read then, so it must describe what will
        not change meanwhile (connections already forgotten, say). `now` None: the clock's now."""
        self._later.append((kind, self._clock() if now is None else now, many))

    def _catch_up(self) -> None:
        """Record what record_later put off, in the order it came."""
        while self._later:
            kind, now, many = self._later.popleft()
            stamp = {"time": round(now, 6), "kind": kind}
            events = []
            for fields in many:
                event = {**stamp, **fields}
                if None in fields.values():
                    event = {key: value for key, value in event.items() if value is not None}
                events.append(event)
            tap = self.tap
            if tap is not None and kind in DECISION_KINDS:
                for event in events:
                    tap(_encode(event))
            with self._lock:
                offer = self._repeats.offer
                written = self._write([record for event in events for record in offer(event)])
            _log(written)

    def latest(self, limit: int = 100, kind: str | None = None) -> list[dict]:
        self._catch_up()
        with self._lock:
            events = [e for e in self._ring if kind is None or e["kind"] == kind]
        return events[-limit:] if limit > 0 else []

    def flush(self, now: float | None = None) -> None:
        """Writes the summaries of repeats whose interval is over, and the file's buffer."""
        self._catch_up()
        with self._lock:
            written = self._write(self._repeats.due(self._clock() if now is None else now))
            if self._file is not None:
                self._write_out()
                self._file.flush()
        _log(written)

    def close(self) -> None:
        self._catch_up()
        with self._lock:
            written = self._write(self._repeats.drain(self._clock()))
            if self._file is not None:
                self._write_out()
                self._file.close()
                self._file = None
        _log(written)

    def _write(self, records: list[dict], event: dict | None = None, text: str | None = None) -> list[dict]:
        """Keeps `records` and queues them for the file; `text`, when given, is `event` encoded."""
        self._ring.extend(records)
        if self._file is not None:
            if text is None:
                self._unwritten += records
            else:
                self._unwritten += [text if record is event else record for record in records]
            if len(self._unwritten) >= UNWRITTEN_LIMIT:
                self._write_out()
        return records

    def _write_out(self) -> None:
        """The records waiting, into the file (its buffer: flush() hands that to the system)."""
        write = self._file.write  # type: ignore[union-attr]
        for record in self._unwritten:
            write((record if isinstance(record, str) else _encode(record)) + "\n")
        self._unwritten.clear()


def _log(records: list[dict]) -> None:
    for event in records:
        level = _LEVELS.get(event["kind"], logging.INFO)
        if LOG.isEnabledFor(level):
            fields = {k: v for k, v in event.items() if k not in ("time", "kind")}
            LOG.log(level, "%s %s", event["kind"], key_values(fields))
