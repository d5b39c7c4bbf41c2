"""Live recording: the event log's tap, the FlowRecorder's batches (on a fake clock, writes
inline), and a Runtime whose controller's decisions end up in `flow_edges`."""

import json
import sqlite3
import time

import pytest

from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.core.flowlog import ALLOWED, DENIED
from segctl.flowstore import FlowStore, StoreError
from segctl.recorder import CHUNK, FLUSH_INTERVAL, FLUSH_SOONER, PRUNE_INTERVAL, FlowRecorder
from segctl.runtime import Runtime

from ..fakenet import DB, DIRECTORY, POLICY, ROGUE, WEB, Net, tcp
from .helpers import Clock


def test_the_tap_gets_every_decision_before_folding_and_monitored_ones_are_not_folded(tmp_path):
    clock = Clock(1e6)
    tapped = []
    log = EventLog(str(tmp_path / "events.jsonl"), clock=clock, repeat_interval=10)
    log.tap = tapped.append
    log.record("allow", src="web", dst="db")
    log.record("quarantine", host="web", reason="EDR")  # no decision: not tapped
    for port in (22, 23, 24, 25):  # the log folds three into one summary; the tap sees each
        log.record("deny", src_mac="m", reason="unknown", dst_port=port)
    for port in (80, 81):  # forwarded to a monitored destination: written one by one
        log.record("deny", src="web", reason="monitored", verdict="monitor", would_deny=True, dst_port=port)
    clock.now += 11
    log.flush()
    events = [json.loads(text) for text in tapped]
    assert [e.get("dst_port") for e in events] == [None, 22, 23, 24, 25, 80, 81]
    assert not any("repeats" in e for e in events)
    written = log.latest()
    assert [e.get("dst_port") for e in written] == [None, None, 22, 80, 81, 25]
    assert written[-1]["repeats"] == 3  # the summary: the last of them, standing for three
    # The file's line of a tapped decision is the very text the tap got (encoded once).
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [lines[0], *lines[2:5]] == [tapped[0], tapped[1], tapped[5], tapped[6]]


def deny(now, src="02:00:00:00:00:99"):
    """A denial as the events log hands it to the recorder: its JSON text."""
    return json.dumps({"time": now, "kind": "deny", "src_mac": src, "reason": "not a directory host"})


def allow(now):
    return json.dumps({"time": now, "kind": "allow", "src": "web", "dst": "db", "proto": "tcp", "rule": "r"})


def no_directory():
    return NO_LABELS


NO_LABELS: dict = {}


@pytest.fixture
def store(tmp_path):
    return FlowStore(str(tmp_path / "flows.sqlite"), retention=3600)


def test_the_recorder_writes_in_batches_when_due(store):
    clock = Clock(1e6)
    writes = []

    def inline(function):
        writes.append(clock.now)
        return function()

    recorder = FlowRecorder(store, no_directory, inline, clock)
    recorder.tap(deny(clock.now))
    assert not recorder.due()
    clock.now += FLUSH_INTERVAL
    assert recorder.due()
    assert recorder.flush() == 1 and not recorder.pending and not recorder.due()
    for _ in range(FLUSH_SOONER):
        recorder.tap(deny(clock.now, src="02:00:00:00:00:98"))
    assert recorder.due()  # many waiting: at once
    assert recorder.flush() == FLUSH_SOONER
    assert recorder.view() == {"pending": 0, "written": FLUSH_SOONER + 1, "lost": 0, "error": None}
    assert {(e.src, e.flows) for e in store.edges()} == {("02:00:00:00:00:99", 1), ("02:00:00:00:00:98", FLUSH_SOONER)}


def test_a_large_batch_pauses_between_its_chunks_and_is_written_whole(store):
    pauses = []
    recorder = FlowRecorder(store, no_directory, lambda f: f(), Clock(1e6))
    for i in range(2 * CHUNK + 1):
        recorder.tap(deny(1e6, src=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"))
    assert recorder.flush(pause=lambda: pauses.append(len(recorder.pending))) == 2 * CHUNK + 1
    assert len(pauses) == 3 and len(store.edges()) == 2 * CHUNK + 1


def test_labels_are_those_of_the_directory_when_the_batch_is_taken(store):
    directory = {"web": {"role": "web"}}
    recorder = FlowRecorder(store, lambda: directory, lambda f: f(), Clock(1e6))
    recorder.tap(allow(1e6))
    directory = {"web": {"role": "frontend"}}  # a reload before the batch is taken
    recorder.flush()
    (edge,) = store.edges()
    assert edge.src_labels == {"role": "frontend"} and edge.dst_labels is None
    directory = {"web": {"role": "backend"}, "db": {"role": "db"}}
    recorder.tap(allow(1e6 + 1))
    recorder.flush()
    (edge,) = store.edges()
    assert (edge.src_labels, edge.dst_labels, edge.flows) == ({"role": "backend"}, {"role": "db"}, 2)


def test_a_new_connection_gets_the_labels_again(store, monkeypatch):
    import segctl.flowstore

    directory = {"web": {"role": "web"}}
    recorder = FlowRecorder(store, lambda: directory, lambda f: f(), Clock(1e6))
    recorder.tap(allow(1e6))
    recorder.flush()
    kept = store._kept

    def fails(*_):
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:  # the kept connection fails, and is closed with its temporary tables
        patch.setattr(segctl.flowstore, "_write", fails)
        recorder.tap(allow(1e6 + 1))
        assert recorder.flush() == 0 and recorder.lost == 1
    recorder.tap(allow(1e6 + 2))
    assert recorder.flush() == 1  # a new connection, the same directory
    assert store._kept is not kept
    (edge,) = store.edges()
    assert edge.src_labels == {"role": "web"} and edge.flows == 2


def test_a_failing_store_loses_the_batch_and_never_raises(store, caplog):
    def broken(function):
        raise StoreError("flows.sqlite: disk full")

    recorder = FlowRecorder(store, no_directory, broken, Clock(1e6))
    recorder.tap(deny(1e6))
    recorder.tap(deny(1e6))
    assert recorder.flush() == 0
    assert recorder.view() == {"pending": 0, "written": 0, "lost": 2, "error": "flows.sqlite: disk full"}
    assert "disk full; 2 decisions not recorded" in caplog.text


def test_the_recorder_prunes_at_its_interval(store):
    clock = Clock(1e6)
    recorder = FlowRecorder(store, no_directory, lambda f: f(), clock)
    store.record([], {}.get)
    recorder.tap(deny(clock.now - 7200))  # older than the retention (an hour) when written
    recorder.flush()  # the first flush prunes, after writing
    assert store.edges() == []
    recorder.tap(deny(clock.now - 7200))
    recorder.flush()
    assert len(store.edges()) == 1  # not pruned again so soon
    clock.now += PRUNE_INTERVAL
    recorder.flush()
    assert store.edges() == []


def test_a_flood_makes_the_prune_due_sooner_so_the_caps_hold(tmp_path, monkeypatch):
    import segctl.recorder

    monkeypatch.setattr(segctl.recorder, "PRUNE_AFTER", 5)
    store = FlowStore(str(tmp_path / "flows.sqlite"), max_decisions=3)
    clock = Clock(1e6)
    recorder = FlowRecorder(store, no_directory, lambda f: f(), clock)
    recorder.flush()  # the first prune
    for n in range(2):
        for i in range(3):
            recorder.tap(deny(clock.now, src=f"02:00:00:00:0{n}:0{i}"))
        recorder.flush()
    assert store.stats()["decisions"] == 6  # 6 written: a prune is due at the next write
    recorder.tap(deny(clock.now))
    recorder.flush()
    assert store.stats()["decisions"] == 3


def test_a_runtime_records_the_decisions_its_controller_makes(tmp_path):
    (tmp_path / "d.yaml").write_text(DIRECTORY)
    (tmp_path / "p.yaml").write_text(POLICY)
    store = FlowStore(str(tmp_path / "flows.sqlite"))
    runtime = Runtime(Sources(str(tmp_path / "d.yaml"), str(tmp_path / "p.yaml")), EventLog(), None, store=store)
    net = Net(core=runtime.controller)
    net.now = time.time()  # the store keeps a week: decisions at the fake network's start would be pruned
    net.deliver_probes()
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40001, 5432))
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 22))
    net.send(1, 2, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 40000, 5432))
    edges = {(e.src, e.dst, e.port, e.verdict): e for e in runtime.flow_edges(None)}
    assert edges[("web", "db", 5432, ALLOWED)].flows == 2
    assert edges[("web", "db", 5432, ALLOWED)].src_labels == {"role": "web"}
    assert edges[("web", "db", 22, DENIED)].rule is None
    assert any(src == ROGUE and verdict == DENIED for src, _, _, verdict in edges)
    assert len(runtime.flow_edges(60)) == len(edges)
    health = runtime.health()["flow_store"]
    assert health["status"] == "ok" and health["decisions"] == 4 and health["pending"] == 0


def test_a_runtime_without_a_store_records_nothing(tmp_path):
    (tmp_path / "d.yaml").write_text(DIRECTORY)
    (tmp_path / "p.yaml").write_text(POLICY)
    runtime = Runtime(Sources(str(tmp_path / "d.yaml"), str(tmp_path / "p.yaml")), EventLog(), None)
    assert runtime.store is None and runtime.events.tap is None
    assert runtime.flow_edges(None) == [] and runtime.health()["flow_store"] == {"status": "off"}


def test_health_through_the_api_shows_the_flow_store(tmp_path):
    from segctl.api import Api
    from segctl.openapi import OPENAPI

    from .test_api import call

    (tmp_path / "d.yaml").write_text(DIRECTORY)
    (tmp_path / "p.yaml").write_text(POLICY)
    store = FlowStore(str(tmp_path / "flows.sqlite"))
    events = EventLog()
    runtime = Runtime(Sources(str(tmp_path / "d.yaml"), str(tmp_path / "p.yaml")), events, None, store=store)
    events.record("deny", src_mac="02:00:00:00:00:99", reason="not a directory host")
    status, body = call(Api(runtime, {}), "GET", "/v1/health", headers={})
    assert status == 200 and body["flow_store"]["pending"] == 1
    runtime.record_flows()
    flow_store = call(Api(runtime, {}), "GET", "/v1/health", headers={})[1]["flow_store"]
    assert flow_store == {
        "status": "ok",
        "path": store.path,
        "retention": 7 * 86400,
        "edge_rows": 1,
        "decisions": 1,
        "oldest": flow_store["oldest"],
        "bytes": flow_store["bytes"],
        "pending": 0,
        "written": 1,
        "lost": 0,
        "error": None,
    }
    assert time.time() - 5 < flow_store["oldest"] <= time.time() and flow_store["bytes"] > 0
    health = OPENAPI["paths"]["/v1/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(health["properties"]["flow_store"]["properties"]) == set(flow_store)  # all of it documented


def test_run_takes_a_retention_duration():
    from segctl.cli import build_parser

    base = ["run", "--directory", "d", "--policy", "p"]
    assert build_parser().parse_args(base).retention == 7 * 86400
    assert build_parser().parse_args([*base, "--retention", "2w"]).retention == 14 * 86400
    assert build_parser().parse_args([*base, "--retention", "0"]).retention == 0


def test_a_bad_retention_is_refused_saying_what_is_expected(capsys):
    from segctl.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--directory", "d", "--policy", "p", "--retention", "a week"])
    assert "--retention: 'a week' is not a duration like 90s, 30m, 24h, 7d or 2w" in capsys.readouterr().err


def test_at_exit_what_is_pending_is_written_inline(tmp_path):
    from segctl.launch import flush_flows_at_exit

    (tmp_path / "d.yaml").write_text(DIRECTORY)
    (tmp_path / "p.yaml").write_text(POLICY)
    store = FlowStore(str(tmp_path / "flows.sqlite"))

    def no_thread_left(function):
        raise RuntimeError("the OS thread pool is gone at exit")

    events = EventLog()
    sources = Sources(str(tmp_path / "d.yaml"), str(tmp_path / "p.yaml"))
    runtime = Runtime(sources, events, None, run_blocking=no_thread_left, store=store)
    events.record("deny", src_mac="02:00:00:00:00:99", reason="not a directory host")
    flush_flows_at_exit(runtime)
    assert [e.flows for e in store.edges()] == [1]


def test_the_last_flush_writes_a_batch_still_queued_and_the_queued_write_then_writes_nothing(store):
    queued = []
    recorder = FlowRecorder(store, no_directory, queued.append, Clock(1e6))  # writes wait in a queue
    recorder.tap(deny(1e6))
    recorder.flush()
    recorder.tap(deny(1e6, src="02:00:00:00:00:98"))
    recorder.run_blocking = lambda function: function()  # at exit: inline
    recorder.flush(last=True)
    assert sum(e.flows for e in store.edges()) == 2
    queued[0]()  # the queued write runs after all
    assert sum(e.flows for e in store.edges()) == 2


def test_a_batch_written_by_its_own_write_is_not_written_again_at_exit(store):
    queued = []
    recorder = FlowRecorder(store, no_directory, queued.append, Clock(1e6))
    recorder.tap(deny(1e6))
    recorder.flush()
    queued[0]()  # done, but the flush that queued it has not heard back yet
    recorder.run_blocking = lambda function: function()
    recorder.flush(last=True)
    assert sum(e.flows for e in store.edges()) == 1


def test_the_last_flush_writes_what_a_paused_flush_had_not_encoded_yet(store):
    recorder = FlowRecorder(store, no_directory, lambda f: f(), Clock(1e6))
    for i in range(CHUNK + 5):
        recorder.tap(deny(1e6, src=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"))

    def signal_arrives():  # SIGTERM while the flush lets packet-ins through; the process then ends
        recorder.flush(last=True)
        raise SystemExit

    with pytest.raises(SystemExit):
        recorder.flush(pause=signal_arrives)
    assert sum(e.flows for e in store.edges()) == CHUNK + 5
