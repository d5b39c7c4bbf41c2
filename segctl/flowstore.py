"""The flow store: every connection decision, kept in SQLite (WAL) at STATE_DIR/flows.sqlite.

Two tables. `edges` sums decisions per hour and per edge (source, destination, protocol,
port, verdict, rule), with the labels each side had; `decisions` keeps the raw decisions of the
retention window, indexed by time. Both are pruned to the retention window, and each has a hard
cap on its rows (oldest dropped first) so that a flood of forged senders cannot fill the disk.

Every call opens its own connection (live recording's batches share one it keeps open): the
controller writes from an OS thread (run_blocking) while the API reads from another, and
SQLite's WAL lets them overlap.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping

from .core.flowlog import (
    ALLOWED,
    DECISION_KINDS,
    DENIED,
    LATEST_TIME,
    MONITORED,
    MOST_REPEATS,
    FlowEdge,
    Observation,
    observation_of,
)

SCHEMA_VERSION = 1
_EDGE_KEY = "src, dst, proto, port, verdict, rule"  # an edge; with `bucket`, a row of `edges`
FILE_NAME = "flows.sqlite"
RETENTION = 7 * 86400  # seconds; shorter windows miss weekly jobs
BUCKET = 3600  # seconds summed into one row of `edges`
MAX_DECISIONS = 1_000_000  # raw rows kept at most (about 150 MB)
MAX_EDGE_ROWS = 1_000_000  # hourly edge rows kept at most
BUSY_TIMEOUT = 10.0  # seconds a writer waits for another (an import, the controller)
NO_PORT, NO_RULE = -1, ""  # stored for None: NULLs would never collide in the key

LabelsOfName = Callable[[str], Mapping[str, str] | None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edges (
    bucket INTEGER NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, proto TEXT NOT NULL,
    port INTEGER NOT NULL, verdict TEXT NOT NULL, rule TEXT NOT NULL,
    src_known INTEGER NOT NULL, dst_known INTEGER NOT NULL, flows INTEGER NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, src_labels TEXT, dst_labels TEXT,
    PRIMARY KEY (bucket, src, dst, proto, port, verdict, rule)
);
CREATE INDEX IF NOT EXISTS edges_last_seen ON edges (last_seen);
CREATE TABLE IF NOT EXISTS decisions (
    time REAL NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, src_ip TEXT, dst_ip TEXT,
    proto TEXT NOT NULL, port INTEGER, verdict TEXT NOT NULL, rule TEXT, reason TEXT,
    count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time);
"""

# A batch is one JSON text that SQLite reads itself (json_each), so the writing thread runs
# almost no Python and leaves the interpreter's lock to the event loop. Either of two kinds:
# - live recording's: the events log's own JSON objects of the decisions (written as they are,
#   so the event loop does no work per decision), read by _EVENTS_INTO_BATCH by the rules of
#   flowlog.observation_of (labels from temp.labels, the directory's when the batch was taken);
# - an array per Observation (encode_batch: `record`, `segctl import-events`), labels included.
# Either fills temp.batch, one row per decision; then _BATCH_EDGES sums them per edge and hour,
# _BATCH_DECISIONS keeps them raw.
_TEMP_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS labels (name TEXT PRIMARY KEY, labels TEXT NOT NULL) WITHOUT ROWID",
    # The columns of encode_batch's arrays, in their order.
    """CREATE TEMP TABLE IF NOT EXISTS batch (
        time REAL NOT NULL, src TEXT NOT NULL, src_known INTEGER NOT NULL, dst TEXT NOT NULL,
        dst_known INTEGER NOT NULL, proto TEXT NOT NULL, port INTEGER, verdict TEXT NOT NULL, rule TEXT,
        reason TEXT, count INTEGER NOT NULL, src_ip TEXT, dst_ip TEXT, src_labels TEXT, dst_labels TEXT)""",
)
# `value` of json_each is made anew at each mention: a materialized `e` makes each event's text once.
_OBSERVATIONS_INTO_BATCH = f"""
WITH e AS MATERIALIZED (SELECT value AS o FROM json_each(?))
INSERT INTO temp.batch SELECT {", ".join(f"o->>{i}" for i in range(15))} FROM e
"""


def _field(name: str) -> str:
    return f"j->>'{name}'"


def _text(name: str) -> str:
    """The field when it is a JSON string (->> gives an array or an object as its JSON text,
    told apart from a string only when the text looks like one)."""
    value = _field(name)
    return (
        f"CASE WHEN typeof({value}) = 'text' AND (substr({value}, 1, 1) NOT IN ('[', '{{') "
        f"OR json_type(j, '$.{name}') = 'text') THEN {value} END"
    )


def _whole(name: str, low: int, high: int) -> str:
    """The field when it is a JSON integer from low to high (->> gives true and false as 1 and 0)."""
    value = _field(name)
    return (
        f"CASE WHEN typeof({value}) = 'integer' AND {value} BETWEEN {low} AND {high} "
        f"AND ({value} NOT IN (0, 1) OR json_type(j, '$.{name}') = 'integer') THEN {value} END"
    )


_TIME = _field("time")
_EVENTS_INTO_BATCH = f"""
WITH e AS MATERIALIZED (SELECT value AS j FROM json_each(?)),
o AS MATERIALIZED (
    SELECT {_TIME} AS time, {_text("src")} AS src_name, {_text("src_mac")} AS src_mac, {_text("dst")} AS dst_name,
        {_text("dst_mac")} AS dst_mac, {_text("proto")} AS proto, {_text("rule")} AS rule, {_text("reason")} AS reason,
        {_text("src_ip")} AS src_ip, {_text("dst_ip")} AS dst_ip, {_whole("src_port", 0, 65535)} AS src_port,
        {_whole("dst_port", 0, 65535)} AS dst_port, coalesce({_whole("repeats", 1, MOST_REPEATS)}, 1) AS count,
        CASE WHEN {_field("kind")} = 'allow' THEN '{ALLOWED}'
             WHEN {_field("verdict")} = 'monitor'
                  OR {_field("would_deny")} = 1 AND json_type(j, '$.would_deny') = 'true' THEN '{MONITORED}'
             ELSE '{DENIED}' END AS verdict
    FROM e
    WHERE {_field("kind")} IN {DECISION_KINDS} AND {_TIME} >= 0 AND {_TIME} < {LATEST_TIME:.0f}
        AND (typeof({_TIME}) = 'real' OR typeof({_TIME}) = 'integer'
             AND ({_TIME} NOT IN (0, 1) OR json_type(j, '$.time') = 'integer'))
),
d AS (
    SELECT time, coalesce(src_name, src_mac) AS src, src_name IS NOT NULL AS src_known,
        coalesce(dst_name, dst_mac, '') AS dst, dst_name IS NOT NULL AS dst_known, coalesce(proto, '') AS proto,
        CASE proto WHEN 'icmp' THEN src_port WHEN 'tcp' THEN dst_port WHEN 'udp' THEN dst_port END AS port,
        verdict, rule, reason, count, src_ip, dst_ip
    FROM o
)
INSERT INTO temp.batch
SELECT d.*, CASE WHEN src_known THEN (SELECT labels FROM temp.labels WHERE name = d.src) END,
    CASE WHEN dst_known THEN (SELECT labels FROM temp.labels WHERE name = d.dst) END
FROM d WHERE src IS NOT NULL
"""
_BATCH_EDGES = f"""
INSERT INTO edges
SELECT CAST(time / {BUCKET} AS INTEGER) AS b, src, dst, proto, coalesce(port, {NO_PORT}) AS po, verdict,
       coalesce(rule, '{NO_RULE}') AS r, max(src_known), max(dst_known), sum(count), min(time), max(time),
       max(src_labels), max(dst_labels)
FROM temp.batch WHERE true
GROUP BY b, src, dst, proto, po, verdict, r
ON CONFLICT (bucket, src, dst, proto, port, verdict, rule) DO UPDATE SET
    flows = flows + excluded.flows,
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen),
    src_known = excluded.src_known, dst_known = excluded.dst_known,
    src_labels = excluded.src_labels, dst_labels = excluded.dst_labels
"""
_BATCH_DECISIONS = """
INSERT INTO decisions
SELECT time, src, dst, src_ip, dst_ip, proto, port, verdict, rule, reason, count FROM temp.batch
"""
# What SQLite's JSON cannot take as Python wrote it (NaN, infinities), or would read otherwise
# than Python does (a lone surrogate such as \ud800, which Python's text cannot hold): a batch
# with any of these (in a string too: rare, and no harm) is read by observation_of.
_UNUSUAL = ("NaN", "Infinity", "\\ud")
_encode = json.JSONEncoder(ensure_ascii=True).encode

_ROWS = f"""
SELECT {_EDGE_KEY}, src_known, dst_known, flows, first_seen, last_seen, src_labels, dst_labels
FROM edges WHERE last_seen >= ? ORDER BY {_EDGE_KEY}, last_seen
"""  # noqa: S608 - our own names


class StoreError(Exception):
    """The flow store cannot be opened or used: `problem` names the file and what is wrong,
    `advice` what to do about it (the message says both)."""

    def __init__(self, problem: str, advice: str | None = None):
        super().__init__(problem if advice is None else f"{problem}; {advice}")
        self.problem = problem


class AlreadyImported(StoreError):
    """The file was imported into this store before."""


class FlowStore:
    """Decisions kept in SQLite at `path`. `readonly` opens never create or change the file."""

    def __init__(
        self,
        path: str,
        retention: float = RETENTION,
        readonly: bool = False,
        *,
        max_decisions: int = MAX_DECISIONS,
        max_edge_rows: int = MAX_EDGE_ROWS,
    ):
        self.path = path
        self.retention = retention
        self.readonly = readonly
        self.max_decisions = max_decisions
        self.max_edge_rows = max_edge_rows
        self._kept: sqlite3.Connection | None = None
        self._kept_lock = threading.Lock()
        # The kept connection whose temp.labels holds these labels (a new connection has none).
        self._labels_written: tuple[sqlite3.Connection, Mapping] | None = None
        if readonly and not os.path.isfile(path):
            raise StoreError(
                f"{path}: no flow store here; `segctl run` records one (--retention), `segctl import-events` fills one"
            )
        with self._connection() as db:
            self._check_schema(db)

    # -- connections ---------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                uri = f"file:{urllib.parse.quote(os.path.abspath(self.path))}?mode=ro"
                db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False)
            else:
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses at most the last batch
                db.execute("PRAGMA temp_store=MEMORY")
                for table in _TEMP_TABLES:  # (in the connection's own temporary database, not the file)
                    db.execute(table)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        db.isolation_level = None  # transactions begin where this module says
        return db

    def close(self) -> None:
        """Close the connection live recording keeps (SQLite folds the write-ahead log into
        the file when its last connection closes). The store opens another if written again."""
        with self._kept_lock:
            if self._kept is not None:
                self._kept.close()
                self._kept = None

    @contextlib.contextmanager
    def _connection(self, kept: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection of its own, closed after; with `kept`, the one live recording keeps
        open between its batches (opening one runs Python the event loop would wait for)."""
        with self._kept_lock if kept else contextlib.nullcontext():
            db = (self._kept or self._open()) if kept else self._open()
            keep = kept
            try:
                yield db
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.rollback()
                keep = False  # closed: the next batch opens the file anew (it may have been replaced)
                raise self._error(exc) from None
            finally:
                if kept:  # (a connection of its own leaves the kept one alone)
                    self._kept = db if keep else None
                if not keep:
                    db.close()

    @contextlib.contextmanager
    def _transaction(self, kept: bool = False) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only; nothing can be written to it")
        with self._connection(kept) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.rollback()
                raise
            db.commit()

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(f"{self.path}: busy (another writer held it past {BUSY_TIMEOUT:g} s); try again")
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            return StoreError(
                f"{self.path}: not a readable flow store ({exc})",
                "move it aside, a new one is started in its place (`segctl run` does this by itself)",
            )
        if "unable to open" in str(exc):
            return StoreError(f"{self.path}: cannot open ({exc})", "does its folder exist, and may segctl write there?")
        return StoreError(f"{self.path}: {exc}")

    def _check_schema(self, db: sqlite3.Connection) -> None:
        objects = db.execute("SELECT type, name FROM sqlite_master").fetchall()
        if not objects and not self.readonly:
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        tables = {name for kind, name in objects if kind == "table"}
        # segctl makes neither views nor triggers: one in the file would run SQL of its own on
        # every read or write (an endless recursive query, say), so the file is not ours.
        foreign = any(kind not in ("table", "index") for kind, _ in objects)
        row = None
        if not foreign and {"meta", "edges", "decisions"} <= tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise StoreError(f"{self.path}: an SQLite file, but not a segctl flow store", "name another --store")
        if row[0] != str(SCHEMA_VERSION):
            raise StoreError(
                f"{self.path}: flow store schema version {row[0]}, this segctl reads version {SCHEMA_VERSION}",
                "use the segctl that wrote it, or move the file aside to start a new one",
            )

    # -- writing -------------------------------------------------------------------------------
    def record(self, observations: Iterable[Observation], labels_of_name: LabelsOfName) -> int:
        """Adds a batch of decisions in one transaction. Returns how many were written."""
        batch = list(observations)
        text = encode_batch(batch, labels_of_name)
        with self._transaction(kept=True) as db:
            _write(db, _OBSERVATIONS_INTO_BATCH, text)
        return len(batch)

    def write_events(
        self, take: Callable[[], list[str]], labels: Mapping[str, Mapping[str, str]], prune_at: float | None = None
    ) -> None:
        """Adds the decisions of the batches `take` returns, each a JSON array of events as the
        events log writes them, in one transaction; then prunes, with `prune_at`. `labels`: the
        labels of the directory's hosts by name, as they are for these batches. `take` is called
        with the writer's lock held, so a batch handed over to several writes (live recording's,
        and its last one at exit) is written once."""
        with self._transaction(kept=True) as db:
            written = self._labels_written
            if written is None or written[0] is not db or written[1] is not labels:
                _write_labels(db, labels)
                self._labels_written = (db, labels)
            for batch in take():
                _write_events(db, batch, labels)
        if prune_at is not None:
            self.prune(prune_at)

    def import_observations(
        self,
        observations: Iterable[Observation],
        labels_of_name: LabelsOfName,
        fingerprint: str,
        description: str,
        force: bool = False,
    ) -> int:
        """Adds a whole file's decisions in one transaction, remembering its fingerprint: a
        second import of the same file raises AlreadyImported (unless `force`), and a failed
        one leaves nothing behind."""
        key = f"import:{fingerprint}"
        with self._transaction() as db:
            before = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if before is not None and not force:
                raise AlreadyImported(
                    f"{self.path}: this file was imported before ({before[0]}); "
                    "importing it again would count its decisions twice (--force does it anyway)"
                )
            written = 0
            batch: list[Observation] = []
            for observation in observations:
                batch.append(observation)
                if len(batch) >= 10_000:
                    _write(db, _OBSERVATIONS_INTO_BATCH, encode_batch(batch, labels_of_name))
                    written += len(batch)
                    batch.clear()
            _write(db, _OBSERVATIONS_INTO_BATCH, encode_batch(batch, labels_of_name))
            written += len(batch)
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, description))
            return written

    def prune(self, now: float) -> dict[str, int]:
        """Drops what is older than the retention, then the oldest rows past the caps."""
        horizon = now - self.retention
        with self._transaction() as db:
            edges = db.execute("DELETE FROM edges WHERE last_seen < ?", (horizon,)).rowcount
            decisions = db.execute("DELETE FROM decisions WHERE time < ?", (horizon,)).rowcount
            decisions += _cap(db, "decisions", "time", self.max_decisions)
            edges += _cap(db, "edges", "last_seen", self.max_edge_rows)
        return {"edges": edges, "decisions": decisions}

    # -- reading -------------------------------------------------------------------------------
    def edges(self, since: float | None = None, now: float | None = None) -> list[FlowEdge]:
        """Every edge seen at or after now - since (all for None), its hourly rows summed: a
        window takes whole hours, each row counted when its last decision is inside."""
        start = _window_start(since, time.time() if now is None else now)
        summed: list[tuple[tuple, list]] = []  # in the edges' order, each edge's hours oldest first
        with self._connection() as db:
            for row in db.execute(_ROWS, (start,)):
                key, values = row[:6], list(row[6:])
                if summed and summed[-1][0] == key:  # the edge's next hour: its labels are the newer
                    before = summed[-1][1]
                    values[2] += before[2]
                    values[3] = min(values[3], before[3])
                    summed[-1] = (key, values)
                else:
                    summed.append((key, values))
        labels = _LabelsCache()
        return [_edge(key, values, labels) for key, values in summed]

    def stats(self) -> dict:
        """For GET /v1/health: the file, its size and what it holds."""
        with self._connection() as db:
            (edge_rows,) = db.execute("SELECT count(*) FROM edges").fetchone()
            decisions, oldest = db.execute("SELECT count(*), min(time) FROM decisions").fetchone()
        size = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
        return {
            "path": self.path,
            "retention": self.retention,
            "edge_rows": edge_rows,  # one per edge and hour (counting edges would read them all)
            "decisions": decisions,
            "oldest": oldest,
            "bytes": size,
        }


def _window_start(since: float | None, now: float) -> float:
    if since is None:
        return float("-inf")
    if not isinstance(since, (int, float)) or isinstance(since, bool) or not since >= 0:
        raise ValueError(f"since must be a number of seconds, 0 or more, not {since!r}")
    return float("-inf") if since >= now else now - since  # a huge window is all of it


def _labels_json(labels: Mapping[str, str] | None) -> str | None:
    return None if labels is None else json.dumps(dict(labels), sort_keys=True)


def encode_batch(observations: list[Observation], labels_of_name: LabelsOfName) -> str:
    """Decisions as the one JSON text the batch statements read; labels as JSON text too (each
    host's looked up once)."""
    labels: dict[str, str | None] = {}

    def labels_of(name: str, known: bool) -> str | None:
        if not known:
            return None
        if name not in labels:
            labels[name] = _labels_json(labels_of_name(name))
        return labels[name]

    return _encode(
        [
            # 0-4: time, src, src_known, dst, dst_known; 5-10: proto, port, verdict, rule, reason,
            # count; 11-14: src_ip, dst_ip, src_labels, dst_labels
            (o.time, o.src, o.src_known, o.dst, o.dst_known, o.proto, o.port, o.verdict, o.rule, o.reason, o.count)
            + (o.src_ip, o.dst_ip, labels_of(o.src, o.src_known), labels_of(o.dst, o.dst_known))
            for o in observations
        ]
    )


def _write(db: sqlite3.Connection, into_batch: str, batch: str) -> None:
    """One batch: `into_batch` (_EVENTS_INTO_BATCH or _OBSERVATIONS_INTO_BATCH) turns it into
    rows of temp.batch, summed into `edges` and kept in `decisions`."""
    db.execute(into_batch, (batch,))
    db.execute(_BATCH_EDGES)
    db.execute(_BATCH_DECISIONS)
    db.execute("DELETE FROM temp.batch")


def _write_events(db: sqlite3.Connection, batch: str, labels: Mapping[str, Mapping[str, str]]) -> None:
    """A batch of events; one SQLite would not read exactly as Python does goes through
    observation_of (the events log's encoder gives NaN for a float NaN, say)."""
    if not any(unusual in batch for unusual in _UNUSUAL):
        try:
            _write(db, _EVENTS_INTO_BATCH, batch)
            return
        except sqlite3.OperationalError as exc:
            if "JSON" not in str(exc):
                raise
    observations = [o for o in map(observation_of, json.loads(batch)) if o is not None]
    _write(db, _OBSERVATIONS_INTO_BATCH, encode_batch(observations, labels.get))


def _write_labels(db: sqlite3.Connection, labels: Mapping[str, Mapping[str, str]]) -> None:
    """temp.labels: `labels` as the JSON text `edges` keeps, by host name."""
    db.execute("DELETE FROM temp.labels")
    text = json.dumps({name: _labels_json(host_labels) for name, host_labels in labels.items()})
    db.execute("INSERT INTO temp.labels SELECT key, value FROM json_each(?)", (text,))


def _cap(db: sqlite3.Connection, table: str, order: str, most: int) -> int:
    """Deletes the oldest rows of `table` past `most`."""
    (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - our own names
    if count <= most:
        return 0
    rows = db.execute(
        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY {order} LIMIT ?)",  # noqa: S608
        (count - most,),
    )
    return rows.rowcount


class _LabelsCache(dict):
    """Decoded labels by their JSON text: the many edges of one host share one mapping."""

    def __missing__(self, text: str) -> Mapping[str, str]:
        self[text] = labels = json.loads(text)
        return labels


def _edge(key: tuple, values: list, labels: _LabelsCache) -> FlowEdge:
    src, dst, proto, port, verdict, rule = key
    src_known, dst_known, flows, first, last, src_labels, dst_labels = values
    return FlowEdge(
        src=src,
        src_known=bool(src_known),
        dst=dst,
        dst_known=bool(dst_known),
        proto=proto,
        port=None if port == NO_PORT else port,
        verdict=verdict,
        rule=rule or None,
        flows=flows,
        first_seen=first,
        last_seen=last,
        src_labels=None if src_labels is None else labels[src_labels],
        dst_labels=None if dst_labels is None else labels[dst_labels],
    )


def set_aside(path: str, now: float) -> str:
    """Moves a store that cannot be opened (and its WAL files) aside; nothing is deleted."""
    aside = f"{path}.corrupt-{int(now)}"
    for suffix in ("-wal", "-shm", ""):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, aside + suffix)
    return aside


def open_for_run(state_dir: str, retention: float, warn: Callable[[str], None]) -> FlowStore | None:
    """The store `segctl run` records into (None when retention is 0). One that cannot be opened
    must stop neither enforcement nor be lost: it is set aside and a new one started."""
    if not retention:
        return None
    path = os.path.join(state_dir, FILE_NAME)
    try:
        return FlowStore(path, retention)
    except StoreError as exc:
        problem = exc
    try:
        aside = set_aside(path, time.time())
        warn(f"{problem.problem}; set aside as {aside}, recording into a new {path}")
        return FlowStore(path, retention)
    except (OSError, StoreError) as exc:
        warn(f"{exc}; flows are not recorded this run (enforcement goes on)")
        return None
