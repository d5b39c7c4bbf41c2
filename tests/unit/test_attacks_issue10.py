"""Attacks on what issue 10 added (per-group modes, the flow store and what reads it): each
test names what an attacker does and asserts what must hold."""

from __future__ import annotations

import shutil
import sqlite3
import threading

import pytest
import yaml

from segctl.config import Sources
from segctl.core.decision import DecisionIndex
from segctl.core.events import EventLog
from segctl.core.flowlog import DENIED
from segctl.core.flows import PacketOut
from segctl.core.policy import parse_policy
from segctl.core.suggest import SuggestOptions, suggest
from segctl.core.yamlsrc import load_yaml_text
from segctl.flowstore import FlowStore, StoreError, open_for_run
from segctl.runtime import Runtime

from ..fakenet import APP, ATTACHED, DB, DIRECTORY, WEB, Net, arp_request, icmp, ipv4, tcp
from .flowedges import SHIPPED_EDGES, flow_edge, recorded_store
from .helpers import directory, policy
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


# -- modes: an intruder on a host -------------------------------------------------------------
MODES_GROUPS = "groups:\n  web: {role: web}\n  db: {role: db}\n  app: {role: app}\n"
MODES_RULES = "rules:\n  - {name: web-to-db, from: web, to: db, proto: tcp, ports: [5432]}\n"
DB_MONITORED = "mode: enforce\nmodes: {db: monitor}\n" + MODES_GROUPS + MODES_RULES
DB_ENFORCED = "mode: enforce\n" + MODES_GROUPS + MODES_RULES
ADDRESS = {WEB: "10.0.0.1", DB: "10.0.0.2", APP: "10.0.0.3"}


def _udp(src, dst, sport, dport):
    return tcp(src, dst, ADDRESS[src], ADDRESS[dst], sport, dport, proto=17)


def _reload(net, policy_text):
    messages, revoked = net.core.reload(directory(DIRECTORY), policy(policy_text), net.now)
    net.fabric.apply(messages)
    return revoked


def test_a_first_packet_held_for_a_monitored_host_is_decided_again_after_it_is_enforced():
    """web sends to db (monitored, not located yet) on a port no rule allows; the packet waits.
    db's group is then enforced: when db shows up, the held packet must not open anything."""
    net = Net(DB_MONITORED)
    net.send(1, 1, arp_request(WEB, ADDRESS[WEB], ADDRESS[WEB]))
    net.send(1, 1, tcp(WEB, DB, ADDRESS[WEB], ADDRESS[DB], 40000, 22))
    assert len(net.core.connections) == 0  # held, not forwarded yet
    _reload(net, DB_ENFORCED)
    net.send(2, 1, arp_request(DB, ADDRESS[DB], ADDRESS[DB]))
    assert len(net.core.connections) == 0
    assert net.trace(1, 1, tcp(WEB, DB, ADDRESS[WEB], ADDRESS[DB], 40000, 22)) == ("drop", 1)


def test_a_monitored_udp_connection_leaves_no_reply_path_once_its_destination_is_enforced():
    """web opens UDP to db while db is monitored; after db is enforced, db (the intruder) may
    not use the old reply direction, whole packets or later fragments, to reach web."""
    net = Net(DB_MONITORED)
    net.announce()
    net.send(1, 1, _udp(WEB, DB, 5000, 53))
    assert net.trace(2, 1, _udp(DB, WEB, 53, 5000)) == ("out", *ATTACHED[WEB])
    assert _reload(net, DB_ENFORCED) == 1
    assert net.trace(2, 1, _udp(DB, WEB, 53, 5000)) != ("out", *ATTACHED[WEB])
    answer = net.send(2, 1, _udp(DB, WEB, 53, 5000))
    later = ipv4(DB, WEB, ADDRESS[DB], ADDRESS[WEB], 17, b"\0" * 16, flags_fragment=0x0010)
    answer += net.send(2, 1, later)
    assert not [m for m in answer if isinstance(m, PacketOut) and net.follow(m)[0] == "out"]
    assert len(net.core.connections) == 0 and net.disagreements() == []


def test_monitor_mode_of_one_group_forwards_nothing_to_an_enforced_one():
    """db is monitored, app enforced with no rule to it. db (the intruder) resolves app by ARP
    (a monitored host resolves anyone), then tries app directly, and app's address behind db's
    MAC and web's: nothing reaches app, and nothing sent towards db reaches anyone but db."""
    net = Net(DB_MONITORED)
    net.announce()
    asked = net.send(2, 1, arp_request(DB, ADDRESS[DB], ADDRESS[APP]))
    assert [(m.dpid, m.port) for m in asked if isinstance(m, PacketOut)] == [(2, 1)]  # documented
    for frame in (
        tcp(DB, APP, ADDRESS[DB], ADDRESS[APP], 40000, 22),
        _udp(DB, APP, 40001, 53),
        icmp(DB, APP, ADDRESS[DB], ADDRESS[APP], 8),
        tcp(DB, APP, ADDRESS[DB], ADDRESS[APP], 40002, 22, flags=0x10),  # a lone ACK (adoption)
    ):
        net.send(2, 1, frame)
        assert net.trace(2, 1, frame)[0] != "out"
    # web (enforced group) sends to db's MAC with app's address: db is monitored, app is not.
    sneaky = tcp(WEB, DB, ADDRESS[WEB], ADDRESS[APP], 40003, 22)
    net.send(1, 1, sneaky)
    assert net.trace(1, 1, sneaky)[0] != "out"
    assert all(c.dst.mac == DB for c in net.core.connections)


# -- suggest: labels and names an LDAP writer controls ----------------------------------------
BREAKOUTS = [
    'web"\nrules:\n  - {name: all, from: any, to: any}\n#',
    "web\u2028  - {name: all, from: any, to: any}",
    "web\x85x: 1",
    "web\ufeff\r\n- any",
    "web' # \\\" \\u0041 &a *a !!python/object:os.system",
]


@pytest.mark.parametrize("evil", BREAKOUTS)
def test_a_hostile_label_value_or_host_name_stays_inside_its_quotes_and_comments(evil):
    """Host names and label values come from the directory (LDAP): one that holds quotes, line
    breaks YAML knows (NEL, U+2028) or YAML syntax must not add a rule or a group to the draft."""
    labels = {"web1": {"role": evil}, "db1": {"role": "db"}, evil: {"role": "db"}}
    edges = [
        flow_edge("web1", "db1", 5432, src_labels=labels["web1"], dst_labels=labels["db1"]),
        flow_edge(evil, "db1", 22, verdict=DENIED, src_labels=labels[evil], dst_labels=labels["db1"]),
        flow_edge("02:00:00:00:99:99", evil, 80, verdict=DENIED, dst_labels=labels[evil]),
    ]
    draft = suggest(edges, SuggestOptions(), labels.get)
    parsed = parse_policy([(load_yaml_text(draft.text, "draft"), "draft")])
    assert [(r.proto, r.service_ranges("tcp")) for r in parsed.rules] == [("tcp", ((5432, 5432),))]
    assert sorted(dict(g.pairs)["role"] for g in parsed.groups.values()) == sorted([evil, "db"])
    index = DecisionIndex(parsed)
    assert index.first_rule({"role": evil}, {"role": "db"}, "tcp", 22) is None
    assert index.first_rule({"role": "db"}, {"role": evil}, "tcp", 5432) is None
