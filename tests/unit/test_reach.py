"""Blast radius (segctl.core.reach): answers computed by hand on a small network, and, for random
policies and directories, the same answer as a naive host-by-host walk over Rule.matches."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segctl.core.decision import DecisionIndex
from segctl.core.directory import Directory, Host
from segctl.core.flowlog import FlowEdge
from segctl.core.reach import MAX_HOPS, ReachMap
from segctl.core.reachview import reach_json, service_text

from .helpers import directory, policy
from .test_decision import labels, rules, selectors

HOSTS = directory(
    """
    hosts:
      web1: {mac: "02:00:00:00:00:01", labels: {role: web, env: prod}}
      web2: {mac: "02:00:00:00:00:02", labels: {role: web, env: prod}}
      app1: {mac: "02:00:00:00:00:03", labels: {role: app, env: prod}}
      q1: {mac: "02:00:00:00:00:04", labels: {role: app, env: prod}}
      db1: {mac: "02:00:00:00:00:05", labels: {role: db, env: prod}}
      jump1: {mac: "02:00:00:00:00:06", labels: {role: jump}}
      printer1: {mac: "02:00:00:00:00:07", labels: {role: printer}}
      ws1: {mac: "02:00:00:00:00:08", labels: {role: ws}}
    """
)
POLICY = policy(
    """
    groups:
      web: {role: web}
      app: {role: app}
      db: {role: db}
      jump: {role: jump}
      printers: {role: printer}
    modes: {printers: monitor}
    rules:
      - {name: web-to-app, from: web, to: app, proto: tcp, ports: [443, "8000-8010"]}
      - {name: app-to-db, from: app, to: db, proto: tcp, ports: [5432]}
      - {name: admin-ssh, from: jump, to: any, proto: tcp, ports: [22]}
      - {name: admin-ping, from: jump, to: any, proto: icmp, icmp_types: [timestamp-request, echo-request]}
      - {name: web-peers, from: web, to: web, proto: udp}
      - {name: anything, from: {role: ws}, to: {role: ws}, proto: any}
    """
)
REACH = ReachMap(HOSTS, DecisionIndex(POLICY), quarantined={"q1"})


def rows(reach):
    return [(r.hop, r.host.name, r.via.name, [rule.name for rule in r.rules], r.monitored) for r in reach.reached]


def test_forward_reach_hop_by_hop_with_the_rules_of_each_connection():
    answer = REACH.reach(HOSTS.find("web1"), hops=3)
    assert rows(answer) == [
        (1, "app1", "web1", ["web-to-app"], False),
        (1, "printer1", "web1", [], True),  # no rule, but monitor mode forwards everything to it
        (1, "web2", "web1", ["web-peers"], False),
        (2, "db1", "app1", ["app-to-db"], False),
    ]  # q1 has app1's labels, but is quarantined; web1 itself is not listed
    assert rows(REACH.reach(HOSTS.find("web1"))) == rows(answer)[:3]


def test_reverse_reach_lists_who_may_open_connections_to_the_host():
    assert rows(REACH.reach(HOSTS.find("db1"), hops=3, reverse=True)) == [
        (1, "app1", "db1", ["app-to-db"], False),
        (1, "jump1", "db1", ["admin-ssh", "admin-ping"], False),
        (2, "web1", "app1", ["web-to-app"], False),
        (2, "web2", "app1", ["web-to-app"], False),
    ]


def test_a_monitored_host_is_reached_by_every_directory_host_on_every_service():
    reached = rows(REACH.reach(HOSTS.find("printer1"), reverse=True))
    assert [row[1] for row in reached] == ["app1", "db1", "jump1", "web1", "web2", "ws1"]
    assert all(row[4] for row in reached)
    assert reached[2][3] == ["admin-ssh", "admin-ping"]


def test_a_quarantined_host_reaches_nothing_and_nothing_reaches_it():
    for reverse in (False, True):
        answer = REACH.reach(HOSTS.find("q1"), hops=5, reverse=reverse)
        assert answer.quarantined and answer.reached == ()
    assert "q1" not in [row[1] for row in rows(REACH.reach(HOSTS.find("jump1"), hops=10))]


@pytest.mark.parametrize("hops", [0, MAX_HOPS + 1, -1, True, 2.0])
def test_hops_out_of_range_are_refused_with_the_range(hops):
    with pytest.raises(ValueError, match="from 1 to 10"):
        REACH.reach(HOSTS.find("web1"), hops=hops)


def test_services_are_shown_with_port_ranges_and_icmp_types():
    answer = reach_json(REACH.reach(HOSTS.find("jump1")), attached={"db1"}, edges=None)
    db1 = next(entry for entry in answer["reached"] if entry["host"] == "db1")
    assert answer["flows_recorded"] is False and db1["seen"] is None  # no store: unknown, not "never"
    assert [s["text"] for s in db1["services"]] == ["tcp/22", "icmp echo-request,timestamp-request"]
    assert db1["services"][1]["icmp_types"] == [[8, 8], [13, 13]] and db1["attached"] is True
    web = reach_json(REACH.reach(HOSTS.find("web1")), attached=(), edges=None)["reached"]
    assert web[0]["services"][0]["text"] == "tcp/443,8000-8010" and web[0]["services"][0]["ports"] == [
        [443, 443],
        [8000, 8010],
    ]
    assert web[2]["services"][0]["text"] == "udp every port" and web[2]["attached"] is False
    ws = POLICY.rules[-1]
    assert service_text(ws) == "any protocol (icmp: echo-request only)"


def edge(src, dst, proto, port, verdict="allowed", flows=3, rule="web-to-app"):
    return FlowEdge(src, True, dst, True, proto, port, verdict, rule, flows, 10.0, 20.0)


def test_first_hop_hosts_show_the_services_seen_from_the_host():
    edges = [
        edge("web1", "app1", "tcp", 8080),
        edge("web1", "app1", "tcp", 443, flows=7),
        edge("web1", "app1", "tcp", 22, verdict="denied", rule=None),  # not forwarded: not a use
        edge("web2", "app1", "tcp", 443),  # another source
        edge("app1", "db1", "tcp", 5432, rule="app-to-db"),  # beyond the first hop
    ]
    answer = reach_json(REACH.reach(HOSTS.find("web1"), hops=2), attached=(), edges=edges)
    seen = {entry["host"]: entry["seen"] for entry in answer["reached"]}
    assert [(s["port"], s["flows"]) for s in seen["app1"]] == [(443, 7), (8080, 3)]
    assert seen["web2"] == [] and seen["db1"] is None
    assert answer["per_hop"] == [3, 1] and answer["flows_recorded"] is True
    backwards = reach_json(REACH.reach(HOSTS.find("app1"), reverse=True), attached=(), edges=edges)
    assert [(e["host"], len(e["seen"])) for e in backwards["reached"]] == [("jump1", 0), ("web1", 2), ("web2", 1)]


# -- the same answer as a naive walk over every pair of hosts and every rule ------------------


def naive_mode(policy_, host_labels):
    found = {mode for group, mode in policy_.modes.items() if policy_.groups[group].matches(host_labels)}
    return "enforce" if "enforce" in found else ("monitor" if found else policy_.mode)


def naive_rules(policy_, src, dst):
    """Rules that allow src some service to dst, each checked on a service it names."""
    found = []
    for rule in policy_.rules:
        if rule.proto == "any":
            proto, port = "other", None
        else:
            ranges = rule.service_ranges(rule.proto)
            proto, port = rule.proto, ranges[0][0] if ranges else 1
        if rule.matches(src.labels, dst.labels, proto, port):
            found.append(rule.name)
    return found


def naive_reach(hosts, policy_, quarantined, start, hops, reverse):
    alive = [h for h in hosts if h.name not in quarantined]

    def opens(src, dst):
        return src.name != dst.name and (naive_rules(policy_, src, dst) or naive_mode(policy_, dst.labels) == "monitor")

    hop_of = {start.name: 0}
    frontier = [start]
    for hop in range(1, hops + 1):
        frontier = [
            h for h in alive if h.name not in hop_of and any(opens(*((h, f) if reverse else (f, h))) for f in frontier)
        ]
        hop_of.update((h.name, hop) for h in frontier)
    del hop_of[start.name]
    return hop_of


@st.composite
def networks(draw):
    p = draw(rules())
    group_names = [f"g{i}" for i in range(draw(st.integers(0, 3)))]
    groups = {name: draw(selectors) for name in group_names}
    modes = {name: draw(st.sampled_from(["enforce", "monitor"])) for name in group_names if draw(st.booleans())}
    p = replace(p, groups=groups, modes=modes, mode=draw(st.sampled_from(["enforce", "monitor"])))
    count = draw(st.integers(1, 9))
    hosts = [Host(f"h{i}", f"02:00:00:00:00:{i:02x}", labels=draw(labels)) for i in range(count)]
    quarantined = {h.name for h in hosts if draw(st.integers(0, 5)) == 0}
    return p, Directory(hosts), quarantined


@settings(max_examples=300, deadline=None)
@given(networks(), st.integers(1, 4), st.booleans(), st.data())
def test_reach_equals_a_naive_walk_over_every_pair_and_rule(network, hops, reverse, data):
    p, hosts, quarantined = network
    start = data.draw(st.sampled_from(list(hosts)))
    answer = ReachMap(hosts, DecisionIndex(p), quarantined).reach(start, hops, reverse)
    if start.name in quarantined:
        assert answer.quarantined and answer.reached == ()
        return
    expected = naive_reach(list(hosts), p, quarantined, start, hops, reverse)
    assert {r.host.name: r.hop for r in answer.reached} == expected
    hop_of = dict(expected, **{start.name: 0})
    for r in answer.reached:
        src, dst = (r.host, r.via) if reverse else (r.via, r.host)
        assert hop_of[r.via.name] == r.hop - 1
        assert [rule.name for rule in r.rules] == naive_rules(p, src, dst)
        assert r.monitored == (naive_mode(p, dst.labels) == "monitor")
        assert r.rules or r.monitored
    assert [(r.hop, r.host.name) for r in answer.reached] == sorted((r.hop, r.host.name) for r in answer.reached)
