"""The flow store (segctl.flowstore) on real SQLite files: what goes in comes out summed per
edge, windows take whole hours, retention and the caps bound it, and a file that is not a
store is refused by name, set aside at run start, never deleted or changed."""

import math
import os
import pathlib
import sqlite3
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segctl.core.events import _encode as events_json
from segctl.core.flowlog import ALLOWED, DENIED, MONITORED, Observation, observation_of
from segctl.flowstore import BUCKET, FlowStore, StoreError, open_for_run

from .flowedges import DAY, RECENT, SHIPPED_EDGES, flow_edge, recorded_store

HOUR = BUCKET
T0 = 1_700_000_000.0 - 1_700_000_000.0 % HOUR  # the start of an hour
LABELS = {"web": {"role": "web"}, "db": {"role": "db", "env": "prod"}}


def seen(time, src="web", dst="db", port=5432, verdict=ALLOWED, rule="web-to-db", count=1, proto="tcp"):
    return Observation(
        time=time,
        src=src,
        src_known=src in LABELS,
        dst=dst,
        dst_known=dst in LABELS,
        proto=proto,
        port=port,
        verdict=verdict,
        rule=rule,
        reason=None,
        count=count,
    )


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "flows.sqlite")


def test_decisions_come_back_summed_per_edge_with_their_labels(path):
    store = FlowStore(path)
    store.record(
        [
            seen(T0 + 1),
            seen(T0 + 5, count=3),
            seen(T0 + 9, port=22, verdict=DENIED, rule=None),
            seen(T0 + 9, src="02:00:00:00:00:99", port=None, verdict=DENIED, rule=None, proto=""),
        ],
        LABELS.get,
    )
    edges = {(e.src, e.port, e.verdict): e for e in store.edges(now=T0 + 10)}
    allowed = edges[("web", 5432, ALLOWED)]
    assert (allowed.flows, allowed.first_seen, allowed.last_seen, allowed.rule) == (4, T0 + 1, T0 + 5, "web-to-db")
    assert allowed.src_labels == {"role": "web"} and allowed.dst_labels == {"role": "db", "env": "prod"}
    assert edges[("web", 22, DENIED)].rule is None
    unknown = edges[("02:00:00:00:00:99", None, DENIED)]
    assert not unknown.src_known and unknown.src_labels is None and unknown.proto == ""
    assert store.stats()["decisions"] == 4 and store.stats()["edge_rows"] == 3


def test_a_window_takes_the_hours_whose_last_decision_is_inside_and_sums_them(path):
    store = FlowStore(path)
    store.record([seen(T0 + 10), seen(T0 + HOUR + 5), seen(T0 + HOUR + 10), seen(T0 + 2 * HOUR + 10)], LABELS.get)
    store.record([seen(T0 + 2 * HOUR + 20, verdict=MONITORED, rule=None)], LABELS.get)
    now = T0 + 2 * HOUR + 30
    (everything,) = [e for e in store.edges(now=now) if e.verdict == ALLOWED]
    assert (everything.flows, everything.first_seen, everything.last_seen) == (4, T0 + 10, T0 + 2 * HOUR + 10)
    (last_hour,) = [e for e in store.edges(since=HOUR, now=now) if e.verdict == ALLOWED]
    assert (last_hour.flows, last_hour.first_seen) == (1, T0 + 2 * HOUR + 10)
    # The window starts at T0 + HOUR + 10: the second hour's row counts whole, its first decision included.
    (two_hours,) = [e for e in store.edges(since=HOUR + 20, now=now) if e.verdict == ALLOWED]
    assert (two_hours.flows, two_hours.first_seen) == (3, T0 + HOUR + 5)
    assert len(store.edges(since=HOUR + 20, now=now)) == 2  # with the monitored one
    assert store.edges(since=5, now=now) == []
    assert store.edges(since=1e300, now=now) == store.edges(now=now)  # a huge window is all of it
    for bad in (-1, math.nan, "7d"):
        with pytest.raises(ValueError, match="since"):
            store.edges(since=bad, now=now)


def test_labels_are_the_latest_recorded(path):
    store = FlowStore(path)
    store.record([seen(T0)], LABELS.get)
    store.record([seen(T0 + HOUR)], {"web": {"role": "frontend"}}.get)
    (edge,) = store.edges(now=T0 + HOUR)
    assert edge.src_labels == {"role": "frontend"} and edge.dst_labels is None and edge.flows == 2


def test_the_store_survives_a_reopen(path):
    FlowStore(path).record([seen(T0), seen(T0 + 1)], LABELS.get)
    again = FlowStore(path)
    assert [e.flows for e in again.edges(now=T0 + 2)] == [2]
    again.record([seen(T0 + 2)], LABELS.get)
    assert [e.flows for e in FlowStore(path, readonly=True).edges(now=T0 + 3)] == [3]


def test_prune_drops_what_is_older_than_the_retention(path):
    store = FlowStore(path, retention=2 * HOUR)
    store.record([seen(T0), seen(T0 + 3 * HOUR, port=80)], LABELS.get)
    assert store.prune(now=T0 + 4 * HOUR) == {"edges": 1, "decisions": 1}
    assert [e.port for e in store.edges()] == [80]
    assert store.stats()["oldest"] == T0 + 3 * HOUR


def test_the_caps_drop_the_oldest_rows_first(path):
    store = FlowStore(path, max_decisions=5, max_edge_rows=3)
    store.record([seen(T0 + i, port=1000 + i) for i in range(8)], LABELS.get)
    assert store.prune(now=T0 + 10) == {"edges": 5, "decisions": 3}
    assert [e.port for e in store.edges()] == [1005, 1006, 1007]
    assert store.stats() | {"bytes": 0} == {
        "path": path,
        "retention": 7 * 86400,
        "edge_rows": 3,
        "decisions": 5,
        "oldest": T0 + 3,
        "bytes": 0,
    }


def test_garbage_is_refused_naming_the_file_and_left_as_it_was(path):
    with open(path, "wb") as handle:
        handle.write(b"not a database, an events file perhaps\n" * 200)
    before = pathlib.Path(path).read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=f"{path}: not a readable flow store"):
            FlowStore(path, readonly=readonly)
    assert pathlib.Path(path).read_bytes() == before


def test_another_sqlite_file_or_another_schema_is_refused(tmp_path, path):
    other = str(tmp_path / "other.sqlite")
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match=f"{other}: an SQLite file, but not a segctl flow store"):
        FlowStore(other)
    FlowStore(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99, this segctl reads version 1"):
        FlowStore(path)


def test_a_readonly_store_is_never_created_nor_written(path):
    with pytest.raises(StoreError, match=f"{path}: no flow store here"):
        FlowStore(path, readonly=True)
    assert not os.path.exists(path)
    writer = FlowStore(path)
    writer.record([seen(T0)], LABELS.get)
    writer.close()  # (else its connection closes when collected, folding the log into the file meanwhile)
    before = pathlib.Path(path).read_bytes()
    reader = FlowStore(path, readonly=True)
    assert len(reader.edges()) == 1
    with pytest.raises(StoreError, match="read-only"):
        reader.record([seen(T0 + 1)], LABELS.get)
    with pytest.raises(StoreError, match="read-only"):
        reader.prune(T0)
    assert pathlib.Path(path).read_bytes() == before
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # the connection itself refuses
        reader._open().execute("DELETE FROM edges")


def test_at_run_start_a_broken_store_is_set_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "flows.sqlite"
    path.write_bytes(b"\x00garbage" * 1000)
    (tmp_path / "flows.sqlite-wal").write_bytes(b"wal")
    warnings = []
    store = open_for_run(str(tmp_path), 7 * 86400, warnings.append)
    assert store is not None and store.edges() == []
    (aside,) = [p for p in os.listdir(tmp_path) if p.startswith("flows.sqlite.corrupt-") and p[-1].isdigit()]
    assert (tmp_path / aside).read_bytes() == b"\x00garbage" * 1000
    assert (tmp_path / f"{aside}-wal").read_bytes() == b"wal"
    assert warnings == [
        f"{path}: not a readable flow store (file is not a database); set aside as {tmp_path / aside}, "
        f"recording into a new {path}"
    ]
    assert open_for_run(str(tmp_path), 0, warnings.append) is None  # --retention 0: recording off


# JSON's \\ud800 escape gives a lone surrogate, which st.text() never does.
TEXT = st.text() | st.sampled_from(["\ud800", "web\udfff"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["time", "kind", "src", "dst", "src_mac", "dst_mac", "proto", "src_port", "dst_port", "rule", "reason"]
ALL_FIELDS = FIELDS + ["repeats", "verdict", "would_deny", "src_ip", "dst_ip"]
EVENT = st.dictionaries(st.sampled_from(ALL_FIELDS), JSON, max_size=12).map(
    lambda e: {**e, "kind": e.get("kind", "deny")}
)


OPTIONAL = {"time": st.floats(), "src": TEXT, "dst_port": st.integers(), "repeats": st.integers()}
DECISION = st.fixed_dictionaries({"kind": st.sampled_from(["allow", "deny"])}, optional=OPTIONAL)


@pytest.fixture(scope="module")
def one_store(tmp_path_factory):
    return FlowStore(str(tmp_path_factory.mktemp("store") / "flows.sqlite"))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(events=st.lists(EVENT | DECISION, max_size=5))
def test_any_json_object_is_a_decision_or_none_and_the_store_takes_every_decision(one_store, events):
    observations = [o for o in map(observation_of, events) if o is not None]
    for o in observations:
        assert math.isfinite(o.time) and o.count >= 1 and (o.port is None or 0 <= o.port <= 65535)
    before = sum(e.flows for e in one_store.edges())
    one_store.record(observations, lambda name: {"any": name})
    assert sum(e.flows for e in one_store.edges()) == before + sum(o.count for o in observations)


# Values that SQLite's JSON reads otherwise than Python unless the store checks their JSON type:
# true and false (->> gives 1 and 0), arrays and objects (their JSON text), strings that look
# like them, numbers past 64 bits, times and ports at their bounds. ASCII only, so that the
# store's SQL reads them (anything else goes through observation_of, as NaN does).
TRICKY = st.one_of(
    st.booleans(),
    st.sampled_from([0, 1, 0.0, 1.0, -0.0]),
    st.sampled_from([-1, 8, 65535, 65536, 2**63, 2**64, 5.5, 99_999_999_999, 10**11, 1e11, 10**9, 10**9 + 1]),
    st.sampled_from(["", "[x", "{", "[]", "tcp", "udp", "icmp", "monitor", "allow", "deny", "web", "db"]),
    st.sampled_from([None, [1], ["tcp"], {"a": 1}, [], {}]),
    st.text(alphabet=string.printable, max_size=4),
)
CONTROLLER_DECISION = st.fixed_dictionaries(
    {
        "time": st.floats(1e9, 2e9) | st.integers(0, 10**11) | st.sampled_from([0, 1, 0.0, 1.0, 1e11, 10**11 - 1]),
        "kind": st.sampled_from(["allow", "deny"]),
        "src": st.sampled_from(["web", "db", "gone"]),
        "src_mac": st.just("02:00:00:00:00:01"),
        "dst_mac": st.just("02:00:00:00:00:02"),
        "proto": st.sampled_from(["tcp", "udp", "icmp", "arp"]),
        "src_port": st.integers(0, 65535) | st.sampled_from([-1, 65536]),
        "dst_port": st.integers(0, 65535) | st.sampled_from([-1, 65536]),
    },
    optional={
        "dst": st.sampled_from(["web", "db"]),
        "rule": st.sampled_from(["web-to-db", "ssh"]),
        "reason": st.sampled_from(["not allowed", "monitored"]),
        "verdict": st.just("monitor"),
        "would_deny": st.just(True),
        "enforced": st.booleans(),
        "switches": st.lists(st.integers(1, 16), max_size=3),
        "src_ip": st.just("10.0.0.1"),
        "dst_ip": st.just("10.0.0.2"),
        "repeats": st.sampled_from([0, 1, 3, 10**9, 10**9 + 1]),
    },
)


@pytest.fixture(scope="module")
def live_and_recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stores")
    return FlowStore(str(folder / "live.sqlite")), FlowStore(str(folder / "recorded.sqlite"))


def _rows(store: FlowStore) -> list[list]:
    with sqlite3.connect(store.path) as db:
        return [
            sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)  # noqa: S608 - our own names
            for table in ("edges", "decisions")
        ]


# A controller's decision with some fields replaced by tricky values (or left out).
TWEAKED = st.builds(
    lambda event, tweaks, left_out: {k: v for k, v in (event | tweaks).items() if k not in left_out},
    CONTROLLER_DECISION,
    st.dictionaries(st.sampled_from(ALL_FIELDS), TRICKY, max_size=4),
    st.sets(st.sampled_from(["src", "src_mac", "dst", "dst_mac", "proto"]), max_size=2),
)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(tweaked=st.lists(TWEAKED, max_size=6), anything=st.lists(EVENT | DECISION, max_size=4))
def test_live_recording_reads_the_events_text_as_observation_of_reads_the_event(live_and_recorded, tweaked, anything):
    live, recorded = live_and_recorded
    batches = ["[" + ",".join(map(events_json, events)) + "]" for events in (tweaked, anything)]  # as the log writes
    live.write_events(lambda: batches, LABELS)
    recorded.record([o for o in map(observation_of, tweaked + anything) if o is not None], LABELS.get)
    assert _rows(live) == _rows(recorded)


def test_live_recording_reads_the_controllers_events_in_sql_and_the_unusual_through_observation_of(path, monkeypatch):
    import segctl.flowstore

    store = FlowStore(path)
    event = {"time": T0, "kind": "allow", "src": "web", "src_mac": "02:00:00:00:00:01", "dst": "db", "proto": "tcp"}
    event |= {"dst_port": 5432, "rule": "r"}
    with monkeypatch.context() as patch:
        patch.setattr(segctl.flowstore, "observation_of", None)  # not called: SQLite reads the events
        store.write_events(lambda: [f"[{events_json(event)}, {events_json({**event, 'switches': [1, 2]})}]"], LABELS)
    odd = [{**event, "reason": math.nan}, {**event, "src": "web\udfff"}]  # SQLite takes no NaN, reads \udfff
    store.write_events(lambda: [f"[{events_json(e)}]" for e in odd], LABELS)
    edges = {(e.src, e.src_labels is not None): e.flows for e in store.edges()}
    assert edges == {("web", True): 3, ("02:00:00:00:00:01", False): 1}  # a lone surrogate is no name
    assert store.stats()["decisions"] == 4


def test_the_edges_the_api_tests_record_read_back_as_they_were_given(path):
    rogue, web = "02:00:00:00:99:99", {"role": "web"}
    over_days = flow_edge("web1", rogue, 8, "icmp", DENIED, 5, web, None, RECENT - 3 * DAY, RECENT)
    old = flow_edge("web1", "db1", None, "udp", MONITORED, 2, web, {"role": "db"}, RECENT - 3 * DAY, RECENT - 3 * DAY)
    edges = [*SHIPPED_EDGES, over_days, old]
    store = recorded_store(path, edges)

    def key(edge):
        return (edge.src, edge.dst, edge.proto, -1 if edge.port is None else edge.port, edge.verdict, edge.rule or "")

    assert sorted(store.edges(), key=key) == sorted(edges, key=key)
    recent = FlowStore(path, readonly=True).edges(since=DAY)
    assert old not in recent and len(recent) == len(SHIPPED_EDGES) + 1
    with pytest.raises(ValueError, match="seen at two times, so it needs two flows or more"):
        recorded_store(path, [flow_edge("web1", "db1", 22, first=RECENT - 1, last=RECENT)])
