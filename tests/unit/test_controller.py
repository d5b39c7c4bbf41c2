"""The controller core driven like the Ryu shell would drive it, its messages applied to a fake
OpenFlow fabric; tests ask where packets go."""

import pytest

from segctl.core.controller import UnknownHost
from segctl.core.flows import FlowAdd, PacketOut
from segctl.core.macs import LOCATOR_MAC
from segctl.core.packets import ARP_REPLY, build_arp, parse_frame
from segctl.core.pipeline import DENY_HOLD, PRIORITY_CONNECTION, Kind, parse_cookie

from ..fakenet import APP, DB, DIRECTORY, LINKS, POLICY, ROGUE, WEB, Net, arp_request, icmp_echo, tcp
from .helpers import directory, policy


def events(net, kind):
    return [e for e in net.core.events.latest(1000) if e["kind"] == kind]


def test_base_pipeline_sends_arp_and_ipv4_to_the_controller_and_drops_the_rest():
    net = Net()
    table = net.fabric.tables[1]
    assert table.lookup({"in_port": 1, "eth_type": 0x0806}).actions == (("controller",),)
    assert table.lookup({"in_port": 1, "eth_type": 0x0800}).actions == (("controller",),)
    assert table.lookup({"in_port": 1, "eth_type": 0x86DD}).actions == ()
    base = {Kind.MISS, Kind.PUNT, Kind.PUNT_METERED, Kind.PUNT_OPENING}
    assert {parse_cookie(e.cookie)[0] for e in net.fabric.entries()} <= base


def test_allowed_connection_is_installed_both_ways_along_the_path_and_nothing_more():
    net = Net()
    net.announce()
    syn = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432)
    sent = net.send(1, 1, syn)
    # the first packet goes on by a port of leaf 1 that faces a spine, and reaches db's port
    (out,) = [m for m in sent if isinstance(m, PacketOut)]
    assert (out.dpid, out.in_port, out.data) == (1, 1, syn)
    assert out.port in {port for dpid, port, _, _ in LINKS if dpid == 1}
    assert net.follow(out) == ("out", 2, 1)
    assert net.trace(1, 1, syn) == ("out", 2, 1)
    reply = tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40000, flags=0x12)  # SYN+ACK
    assert net.trace(2, 1, reply) == ("out", 1, 1)
    # db's RST, FIN and ACK segments pass; a SYN, which would open a connection back, is dropped at db's port
    for flags in (0x04, 0x11, 0x10):
        assert net.trace(2, 1, tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40000, flags=flags)) == ("out", 1, 1)
    assert net.trace(2, 1, tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40000)) == ("drop", 2)
    # a new connection from db back to web (not a reply) still goes to the controller
    assert net.trace(2, 1, tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40001)) == ("controller", 2)
    assert net.trace(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5433)) == ("controller", 1)
    connections = [e for e in net.fabric.entries() if e.priority == PRIORITY_CONNECTION]
    assert len(connections) == 6  # 3 switches x 2 directions
    assert len({e.cookie for e in connections}) == 1
    assert sum(e.notify_removed for e in connections) == 1
    assert events(net, "allow")[-1]["rule"] == "web-to-db"


def test_denied_flow_gets_a_short_exact_drop_at_the_ingress():
    net = Net()
    net.announce()
    bad = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 22)
    net.send(1, 1, bad)
    assert net.trace(1, 1, bad) == ("drop", 1)
    drops = [e for e in net.fabric.entries(1) if parse_cookie(e.cookie)[0] == Kind.DENY]
    assert len(drops) == 1 and drops[0].hard_timeout > 0
    assert net.trace(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432)) == ("controller", 1)
    assert "default deny" in events(net, "deny")[-1]["reason"]
    net.advance(DENY_HOLD)  # the drop times out on the switch: the flow is asked again
    assert net.trace(1, 1, bad) == ("controller", 1)
    assert not [e for e in net.fabric.entries(1) if parse_cookie(e.cookie)[0] == Kind.DENY]


def test_unknown_and_spoofing_senders_are_dropped_at_their_port():
    net = Net()
    net.announce()
    net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 1, 5432))
    assert net.trace(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 1, 5432)) == ("drop", 1)
    # web's MAC from another port: refused, web keeps working
    spoof = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 2, 5432)
    net.send(1, 2, spoof)
    assert net.trace(1, 2, spoof) == ("drop", 1)
    assert net.core.bindings.location(WEB) == (1, 1)
    # web lying about its source IP
    lie = tcp(WEB, DB, "10.0.0.3", "10.0.0.2", 3, 5432)
    net.send(1, 1, lie)
    assert net.trace(1, 1, lie) == ("drop", 1)
    assert net.trace(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 4, 5432)) == ("controller", 1)
    # app pinned to 2/2 showing up at 1/2
    net.send(1, 2, arp_request(APP, "10.0.0.3", "10.0.0.2"))
    assert [e["problem"] for e in events(net, "deny")] == ["unknown", "location", "ip", "pin"]


def test_arp_is_answered_by_the_controller_for_peers_only_and_cannot_poison():
    net = Net()
    net.announce()
    out = net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"))
    replies = [parse_frame(m.data) for m in out if isinstance(m, PacketOut)]
    assert len(replies) == 1 and replies[0].arp.op == ARP_REPLY
    assert (replies[0].arp.sender_mac, replies[0].arp.sender_ip, replies[0].eth_dst) == (DB, "10.0.0.2", WEB)
    # web and app share no rule: no answer
    assert not [m for m in net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.3")) if isinstance(m, PacketOut)]
    # ARP claiming db's IP from web: dropped, web's binding unchanged
    assert net.send(1, 1, arp_request(WEB, "10.0.0.2", "10.0.0.2")) == []
    assert events(net, "deny")[-1]["reason"] == "web sent from IP 10.0.0.2, bound to 10.0.0.1"
    # an ARP whose sender MAC is not the frame's source, with nothing else wrong with it (web,
    # at its port, with its address, asking for a peer): refused, and why
    assert net.send(1, 1, arp_request(ROGUE, "10.0.0.1", "10.0.0.2", eth_src=WEB)) == []
    deny = events(net, "deny")[-1]
    assert (deny["src_mac"], deny["packet"]) == (WEB, "arp")
    assert deny["reason"] == f"ARP sender MAC {ROGUE} differs from frame source"
    assert net.core.bindings.location(WEB) == (1, 1) and net.core.bindings.location(DB) == (2, 1)
    assert ROGUE not in net.core.bindings.by_mac


def test_first_packet_waits_for_an_unlocated_destination_and_is_replayed():
    net = Net()
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    syn = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432)
    probes = [m for m in net.send(1, 1, syn) if isinstance(m, PacketOut)]
    assert {(p.dpid, p.port) for p in probes} == {(1, 2), (1, 3), (2, 1), (2, 2)}
    assert all(parse_frame(p.data).eth_src == LOCATOR_MAC for p in probes)
    answer = build_arp(ARP_REPLY, DB, WEB, DB, "10.0.0.2", WEB, "10.0.0.1")
    replayed = [m for m in net.send(2, 1, answer) if isinstance(m, PacketOut)]
    assert replayed and replayed[-1].data == syn and net.trace(1, 1, syn) == ("out", 2, 1)
    # the controller's own probe echoing back from the fabric is ignored
    assert net.send(2, 10, probes[0].data) == []


def test_link_down_revokes_crossing_connections_and_new_ones_take_the_other_spine():
    net = Net()
    net.announce()
    syn = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432)
    net.send(1, 1, syn)
    spine = net.core.connections.find(next(iter(net.core.connections.by_key))).path[1].dpid
    link = next(link for link in LINKS if link[0] == 1 and link[2] == spine)
    net.fabric.apply(net.core.link_down(*link, net.now))
    assert len(net.core.connections) == 0
    assert not [e for e in net.fabric.entries() if e.priority == PRIORITY_CONNECTION]
    net.fabric.links.pop((link[0], link[1]))
    net.send(1, 1, syn)
    assert net.trace(1, 1, syn) == ("out", 2, 1)
    assert next(iter(net.core.connections)).path[1].dpid != spine


def test_flow_expiry_ends_the_connection_everywhere():
    net = Net()
    net.announce()
    net.send(2, 2, icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2"))
    connection = next(iter(net.core.connections))
    assert connection.switches == [2] and connection.rule == "ping-db"
    assert net.core.flow_removed(1, connection.cookie, net.now) == []  # not the ingress switch
    net.fabric.apply(net.core.flow_removed(2, connection.cookie, net.now))
    assert len(net.core.connections) == 0 and not [e for e in net.fabric.entries() if e.priority == PRIORITY_CONNECTION]


def test_quarantine_cuts_a_host_everywhere_and_release_restores_it():
    net = Net()
    net.announce()
    syn = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432)
    net.send(1, 1, syn)
    net.send(2, 2, icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2"))
    net.fabric.apply(net.core.quarantine("web", "EDR alert", net.now, by="test"))
    assert net.trace(1, 1, syn) == ("drop", 1)
    assert not [
        e for e in net.fabric.entries() if e.priority == PRIORITY_CONNECTION and e.match_dict().get("eth_src") in (WEB,)
    ]
    assert len(net.core.connections) == 1  # app -> db untouched
    for dpid in (1, 2, 101, 102):
        assert any(isinstance(e, FlowAdd) and e.match_dict() == {"eth_dst": WEB} for e in net.fabric.entries(dpid))
    net.send(1, 1, syn)
    assert len(net.core.connections) == 1
    # a switch reconnecting gets the quarantine again
    net.fabric.apply(net.core.switch_up(101, [1, 2], net.now))
    assert any(e.match_dict() == {"eth_src": WEB} for e in net.fabric.entries(101))
    net.fabric.apply(net.core.release("web", net.now))
    assert net.trace(1, 1, syn) == ("controller", 1)
    net.send(1, 1, syn)
    assert net.trace(1, 1, syn) == ("out", 2, 1)
    with pytest.raises(UnknownHost):
        net.core.release("web", net.now)
    with pytest.raises(UnknownHost):
        net.core.quarantine("nobody", "x", net.now)


def test_reload_revokes_exactly_what_is_no_longer_allowed():
    net = Net()
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    net.send(2, 2, icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2"))
    messages, revoked = net.core.reload(directory(DIRECTORY), policy(POLICY.split("  - {name: ping-db")[0]), net.now)
    net.fabric.apply(messages)
    assert revoked == 1 and [c.rule for c in net.core.connections] == ["web-to-db"]
    assert net.trace(2, 2, icmp_echo(APP, DB, "10.0.0.3", "10.0.0.2")) == ("controller", 2)
    # the kept connection still goes host to host on the switches (it shares switch 2), both ways
    assert net.trace(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432, flags=0x10)) == ("out", 2, 1)
    assert net.trace(2, 1, tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40000, flags=0x10)) == ("out", 1, 1)
    assert net.disagreements() == []


def test_monitor_mode_forwards_what_enforce_would_deny_and_logs_it():
    net = Net(policy_text="mode: monitor\n" + POLICY)
    net.announce()
    bad = tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40000)
    net.send(2, 1, bad)
    assert net.trace(2, 1, bad) == ("out", 1, 1)
    assert events(net, "deny")[-1]["verdict"] == "monitor"


def test_a_reply_seen_first_re_creates_its_connection_client_to_server():
    """After a controller restart the switches hold no entries; the server's next segment of a
    live connection must not be cut off for DENY_HOLD seconds."""
    net = Net()
    net.announce()
    reply = tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40000, flags=0x10)
    sent = net.send(2, 1, reply)
    (out,) = [m for m in sent if isinstance(m, PacketOut)]
    assert (out.dpid, out.in_port, out.data) == (2, 1, reply) and out.port in (10, 11)
    assert net.trace(2, 1, reply) == ("out", 1, 1)
    assert net.trace(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432, flags=0x10)) == ("out", 2, 1)
    (connection,) = net.core.connections
    assert (connection.src.name, connection.dst.name, connection.rule) == ("web", "db", "web-to-db")
    assert events(net, "allow")[-1]["adopted"] == "reply seen first"


def test_only_replies_to_allowed_connections_are_adopted():
    net = Net()
    net.announce()
    syn_back = tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 5432, 40001)  # db opening a connection to web
    net.send(2, 1, syn_back)
    assert net.trace(2, 1, syn_back)[0] == "drop"
    wrong_port = tcp(DB, WEB, "10.0.0.2", "10.0.0.1", 22, 40002, flags=0x10)  # web may not reach db:22
    net.send(2, 1, wrong_port)
    assert net.trace(2, 1, wrong_port)[0] == "drop"
    assert len(net.core.connections) == 0


def test_quarantine_takes_only_a_host_unicast_mac_so_the_fabric_keeps_its_probes():
    """Issue 15 item 2: drops on 01:80:c2:00:00:0e matched the controller's own LLDP probes and
    every link vanished. A group, the all-zero or a probe source address is refused; an entry
    saved before the check stays releasable."""
    from segctl.core.discovery import PROBE_SOURCE_MAC
    from segctl.core.macs import NotAHostMac, why_not_a_host_mac

    net = Net()
    for mac in ("01:80:c2:00:00:0e", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", LOCATOR_MAC, PROBE_SOURCE_MAC):
        with pytest.raises(NotAHostMac, match=f"^{mac} is .*: quarantine takes a host's unicast MAC$"):
            net.core.quarantine(mac, "attack run", net.now)
    assert net.core.quarantined == {}
    probe = {"eth_src": PROBE_SOURCE_MAC, "eth_dst": "01:80:c2:00:00:0e", "eth_type": 0x88CC}
    for _, _, dpid, port in LINKS:  # every link's probes still reach the controller
        assert net.fabric.trace(dpid, port, probe) == ("controller", dpid)
    assert net.core.quarantine_target("02:00:00:00:99:99") == ("02:00:00:00:99:99", "02:00:00:00:99:99")
    net.core.restore_quarantine(
        [{"host": "01:80:c2:00:00:0e", "mac": "01:80:c2:00:00:0e", "reason": "old", "since": 1.0, "by": "x"}]
    )
    net.fabric.apply(net.core.release("01:80:c2:00:00:0e", net.now))
    own = {"0e:00:00:00:00:01": "a probe"}
    assert why_not_a_host_mac("0e:00:00:00:00:01", own) == "0e:00:00:00:00:01 is the source address of a probe"
    assert why_not_a_host_mac("03:00:00:00:00:01", own).startswith("03:00:00:00:00:01 is a multicast (group) address")
    assert why_not_a_host_mac("02:00:00:00:00:00", own) is None  # locally administered unicast: a host's
