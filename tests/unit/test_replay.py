"""What the controller sends is safe to send again: a switch that gets a batch twice (a
reconnect, a retry) ends up exactly as after once. On the fake fabric, which takes each batch
in the order the wire carries it."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segctl.core.planner import plan_connection

from ..fakenet import APP, ATTACHED, DB, ROGUE, SWITCHES, WEB, Net, arp_request, icmp_echo, tcp
from .helpers import policy

POLICY = """
rules:
  - {name: web-to-db, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
  - {name: mdns, from: {role: web}, to: {role: db}, proto: udp, ports: [5353]}
  - {name: ping-db, from: any, to: {role: db}, proto: icmp}
"""
HOSTS = {WEB: "10.0.0.1", DB: "10.0.0.2", APP: "10.0.0.3", ROGUE: "10.0.0.9"}
WHERE = dict(ATTACHED, **{ROGUE: (1, 3)})


def state(net: Net) -> dict:
    """What every switch holds: its entries, its meters (rate, burst) and its fragment mode; and
    what the switches refused. Packet-outs and FlowRemoved aside."""
    net.fabric.expire()
    tables = {
        dpid: (Counter(t.entries), {i: (m.rate, m.burst) for i, m in t.meters.items()}, t.frag_mode)
        for dpid, t in net.fabric.tables.items()
    }
    return {"tables": tables, "errors": list(net.fabric.errors)}


def twice(net: Net, messages: list) -> tuple[dict, dict]:
    """The state after the fabric took `messages` once, and after it took them again."""
    net.fabric.apply(messages)
    once = state(net)
    net.fabric.apply(messages)
    return once, state(net)


def syn(src, dst, sport=40000, dport=5432, proto=6):
    return tcp(src, dst, HOSTS[src], HOSTS[dst], sport, dport, proto=proto)


def test_switch_up_applied_twice_leaves_tables_meters_and_config_as_once():
    net = Net(POLICY)
    net.announce()
    net.send(*WHERE[WEB], syn(WEB, DB))  # a connection the reconnect revokes
    assert net.core.connections
    for dpid, ports in SWITCHES:
        once, again = twice(net, net.core.switch_up(dpid, ports, net.now))
        assert again == once
        assert once["tables"][dpid][1] and once["tables"][dpid][2] == "nx-match" and once["errors"] == []
    assert net.core.connections.by_id == {} and net.disagreements() == []


def test_a_connection_s_plan_applied_twice_changes_nothing_more():
    net = Net(POLICY)
    net.announce()
    first = syn(WEB, DB)
    answer = net.send(*WHERE[WEB], first)
    once = state(net)
    removals = len(net.removals)
    (connection,) = net.core.connections
    for messages in (answer, plan_connection(connection)):
        assert twice(net, messages) == (once, once)
    assert len(net.removals) == removals  # an add over an equal entry replaces it silently
    assert net.disagreements() == [] and net.trace(*WHERE[WEB], first) == ("out", *ATTACHED[DB])


def test_a_revocation_applied_twice_changes_nothing_more():
    net = Net(POLICY)
    net.announce()
    first = syn(WEB, DB)
    net.send(*WHERE[WEB], first)
    messages, revoked = net.core.reload(net.core.directory, policy("rules: []\n"), net.now)
    assert revoked == 1
    once, again = twice(net, messages)
    assert again == once and net.disagreements() == []
    assert net.trace(*WHERE[WEB], first)[0] == "controller"


def test_a_quarantine_and_a_release_applied_twice_change_nothing_more():
    net = Net(POLICY)
    net.announce()
    net.send(*WHERE[WEB], syn(WEB, DB))
    once, again = twice(net, net.core.quarantine("web", "test", net.now))
    assert again == once and net.core.connections.by_id == {}
    once, again = twice(net, net.core.release("web", net.now))
    assert again == once and net.disagreements() == []


def frame(src: str, dst: str, proto: str, sport: int, dport: int) -> bytes:
    if proto == "icmp":
        return icmp_echo(src, dst, HOSTS[src], HOSTS[dst])
    if proto == "arp":
        return arp_request(src, HOSTS[src], HOSTS[dst])
    return syn(src, dst, sport, dport, proto=6 if proto == "tcp" else 17)


def cut_off_or_released(net: Net, mac: str) -> None:
    """Quarantine the host, or release it if it is quarantined (as an engineer might)."""
    if any(entry.mac == mac for entry in net.core.quarantined.values()):
        net.fabric.apply(net.core.release(mac, net.now))
    else:
        net.fabric.apply(net.core.quarantine(mac, "test", net.now))


# First packets (and ARP) from a host to another, and now and then a quarantine or release.
PACKETS = st.lists(
    st.tuples(
        st.sampled_from(sorted(HOSTS)),
        st.sampled_from(sorted(HOSTS)),
        st.sampled_from(["tcp", "udp", "icmp", "arp", "cut"]),
        st.integers(40000, 40002),
        st.sampled_from([5432, 5353, 22]),
    ),
    max_size=25,
)


@pytest.mark.parametrize("since", ["start", "up"])
@given(packets=PACKETS)
def test_replaying_what_the_switches_were_sent_leaves_every_table_as_it_was(since, packets):
    """Every batch since the controller started (switch-ups, probes, first packets of allowed
    and denied connections, quarantines and releases, answers to FlowRemoved), sent once more
    in the same order; or every batch since the switches were up (no switch-up wipes the
    tables first: each batch must be harmless on top of all that came after it)."""
    net = Net(POLICY)
    sent: list[list] = []
    take = net.fabric.apply

    def recorded(messages):
        sent.append(list(messages))
        return take(messages)

    net.fabric.apply = recorded
    net.restart()  # the controller (re)starts: everything it sends is recorded
    first = 0 if since == "start" else len(sent)
    net.announce()
    for src, dst, proto, sport, dport in packets:
        if proto == "cut":
            cut_off_or_released(net, src)
        else:
            net.send(*WHERE[src], frame(src, dst, proto, sport, dport))
    before, removals = state(net), len(net.removals)
    assert net.disagreements() == []
    for messages in sent[first:]:
        take(messages)
    assert state(net) == before and net.disagreements() == []
    assert all(answer == [] for _, answer in net.removals[removals:])  # only deletes' reports
