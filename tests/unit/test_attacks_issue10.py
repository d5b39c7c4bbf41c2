"""Attacks on what issue 10 added (per-group modes, the flow store and what reads it): each
test names what an attacker does and asserts what must hold."""

from __future__ import annotations

import shutil
import sqlite3
import threading

import pytest
import yaml

from segctl.config import Sources
from segctl.core.events import EventLog
from segctl.flowstore import FlowStore, StoreError, open_for_run
from segctl.runtime import Runtime

from .flowedges import SHIPPED_EDGES, recorded_store
from .test_api import ROOT


def _in_another_thread(function):
    """run_blocking as Ryu's tpool does it: the function runs in an OS thread of its own."""
    result: dict = {}

    def target():
        try:
            result["value"] = function()
        except BaseException as exc:  # handed back to the caller, as tpool does
            result["error"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_a_simulated_drafts_yaml_is_parsed_off_the_event_loop(tmp_path, monkeypatch):
    """An API client posts a 1 MiB draft to /v1/policy/simulate: parsing it takes seconds, and
    on the event loop's thread that stalls every switch (packet-ins, echoes) meanwhile."""
    for name in ("directory.yaml", "policy.yaml"):
        shutil.copy(f"{ROOT}/policies/{name}", tmp_path / name)
    store = recorded_store(str(tmp_path / "flows.sqlite"), SHIPPED_EDGES)
    sources = Sources(str(tmp_path / "directory.yaml"), str(tmp_path / "policy.yaml"))
    runtime = Runtime(sources, EventLog(), None, run_blocking=_in_another_thread, store=store)
    parsed_in: list[threading.Thread] = []
    real = yaml.SafeLoader.get_single_node

    def spy(loader):
        parsed_in.append(threading.current_thread())
        return real(loader)

    monkeypatch.setattr(yaml.SafeLoader, "get_single_node", spy)
    report = runtime.simulate("rules: []\n", 3600.0, 5)
    assert report["breaks"] is True
    assert parsed_in and threading.main_thread() not in parsed_in


def _hostile_store(path, edges_sql: str, extra: str = "") -> None:
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        f"{edges_sql};"
        "CREATE TABLE decisions (time REAL NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, src_ip TEXT,"
        " dst_ip TEXT, proto TEXT NOT NULL, port INTEGER, verdict TEXT NOT NULL, rule TEXT, reason TEXT,"
        " count INTEGER NOT NULL);"
        f"{extra}"
    )
    db.commit()
    db.close()


ENDLESS_VIEW = (
    "CREATE VIEW edges AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT 'a' AS src, 'b' AS dst, 'tcp' AS proto, x AS port, 'allowed' AS verdict, '' AS rule, "
    "1 AS src_known, 1 AS dst_known, 1 AS flows, 0.0 AS first_seen, 1e10 AS last_seen, "
    "NULL AS src_labels, NULL AS dst_labels FROM c"
)
EDGES_TABLE = (
    "CREATE TABLE edges (bucket INTEGER NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, proto TEXT NOT NULL,"
    " port INTEGER NOT NULL, verdict TEXT NOT NULL, rule TEXT NOT NULL, src_known INTEGER NOT NULL,"
    " dst_known INTEGER NOT NULL, flows INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,"
    " src_labels TEXT, dst_labels TEXT, PRIMARY KEY (bucket, src, dst, proto, port, verdict, rule))"
)
# Every write of a batch would run a query that never ends, holding the store's writer.
ENDLESS_TRIGGER = (
    "CREATE TRIGGER stall AFTER INSERT ON decisions BEGIN SELECT count(*) FROM "
    "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c); END;"
)


@pytest.mark.parametrize("readonly", [True, False])
def test_a_store_whose_edges_are_an_endless_view_is_refused_not_read_forever(tmp_path, readonly):
    """Someone hands over (or plants in STATE_DIR) a flows.sqlite whose `edges` is a view over
    an endless recursive query: `segctl map --store` would never return (its memory growing),
    and GET /v1/health's row count would hold a worker thread forever."""
    path = str(tmp_path / "flows.sqlite")
    _hostile_store(path, ENDLESS_VIEW)
    with pytest.raises(StoreError, match="not a segctl flow store"):
        FlowStore(path, readonly=readonly)


def test_a_store_with_a_trigger_is_refused_and_set_aside_at_run_start(tmp_path):
    """A planted trigger would run its own SQL on every batch the controller writes."""
    path = str(tmp_path / "flows.sqlite")
    _hostile_store(path, EDGES_TABLE, ENDLESS_TRIGGER)
    with pytest.raises(StoreError, match="not a segctl flow store"):
        FlowStore(path, readonly=True)
    warnings: list[str] = []
    store = open_for_run(str(tmp_path), 3600.0, warnings.append)
    assert store is not None and len(warnings) == 1 and "set aside" in warnings[0]
    names = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert names == set()
