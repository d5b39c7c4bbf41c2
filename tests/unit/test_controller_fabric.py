"""Switches, ports and links coming and going, packets in transit, first packets held for a
destination, ARP, rate limits and reloads, driven on the fake fabric (issue 18: each test
here failed under mutants of segctl/core/controller.py that the unit tests let survive)."""

from segctl import ofmsg, views
from segctl.core.controller import Controller
from segctl.core.discovery import LINK_TIMEOUT
from segctl.core.edge import LOCATE_INTERVAL as PROBE_INTERVAL
from segctl.core.edge import PENDING_HOLD, PENDING_PER_HOST
from segctl.core.flows import Barrier, FlowAdd, MetersClear, MeterSet, PacketOut, SwitchConfig, match_of
from segctl.core.macs import LOCATOR_MAC
from segctl.core.packets import ARP_REPLY, build_arp, mac_bytes, parse_frame
from segctl.core.pipeline import PRIORITY_PUNT_METERED, PRIORITY_PUNT_OPENING, Kind, parse_cookie
from segctl.core.planner import METER_ID_MAX

from ..fakenet import APP, ATTACHED, DB, DIRECTORY, POLICY, ROGUE, WEB, Net, arp_request, icmp, ipv4, tcp
from .helpers import directory, policy
from .test_controller_events import Recorder, at

ACK = 0x10
IP = {WEB: "10.0.0.1", DB: "10.0.0.2", APP: "10.0.0.3", ROGUE: "10.0.0.9"}


def seg(src, dst, sport, dport, flags=0x02):
    return tcp(src, dst, IP[src], IP[dst], sport, dport, flags=flags)


def kinds(net, kind):
    return [e for e in net.core.events.latest(100_000) if e["kind"] == kind]


def outs(messages):
    return [m for m in messages if isinstance(m, PacketOut)]


# -- switches --------------------------------------------------------------------------------
def test_a_connecting_switch_gets_its_pipeline_and_meters_and_nothing_goes_elsewhere():
    core = Controller(directory(DIRECTORY), policy(POLICY))
    ports = [1, 2, METER_ID_MAX, METER_ID_MAX + 1]
    messages = core.switch_up(7, ports, 100.0)
    assert {m.dpid for m in messages} == {7}
    assert isinstance(messages[0], SwitchConfig) and MetersClear(7) in messages
    barrier = messages.index(Barrier(7))
    assert all(isinstance(m, PacketOut) for m in messages[barrier + 1 :])
    assert sorted(m.port for m in messages[barrier + 1 :]) == sorted(ports)
    meters = [m for m in messages if isinstance(m, MeterSet)]
    # one meter per port that can have one (ids above METER_ID_MAX are reserved), at twice the
    # port's packet-in budget: the controller's own bucket decides below that
    assert meters == [MeterSet(7, port, rate=2000, burst=2000) for port in (1, 2, METER_ID_MAX)]
    metered = [m for m in messages if isinstance(m, FlowAdd) and m.priority == PRIORITY_PUNT_METERED]
    assert {(m.match_dict()["in_port"], m.match_dict()["eth_type"], m.meter) for m in metered} == {
        (port, eth_type, port) for port in (1, 2, METER_ID_MAX) for eth_type in (0x0806, 0x0800)
    }
    assert core.events.latest(1) == [{"time": 100.0, "kind": "switch-up", "dpid": 7, "ports": 4}]


def test_a_tcp_opening_segment_reaches_the_controller_by_an_entry_of_its_own_through_the_port_s_meter():
    # Open vSwitch caches a packet's way by the fields its entries looked at: a SYN's way to the
    # controller must not be one the connection's next segments (ACK set) also match.
    net = Net()
    table = net.fabric.tables[1]
    fields = {"in_port": 1, "eth_type": 0x0800, "ip_proto": 6}
    syn = table.lookup({**fields, "tcp_flags_nxm": 0x002})
    assert (syn.priority, syn.meter, syn.actions) == (PRIORITY_PUNT_OPENING, 1, (("controller",),))
    assert syn.match_dict()["tcp_flags_nxm"] == (0x002, 0x012)  # SYN set, ACK clear: nothing else looked at
    for flags in (0x012, 0x010, 0x018, 0x011, 0x004, 0x000):  # SYN+ACK, ACK, PSH+ACK, FIN+ACK, RST, none
        other = table.lookup({**fields, "tcp_flags_nxm": flags})
        assert (other.priority, other.meter) == (PRIORITY_PUNT_METERED, 1), hex(flags)
    udp = table.lookup({"in_port": 1, "eth_type": 0x0800, "ip_proto": 17})
    assert udp.priority == PRIORITY_PUNT_METERED


def test_without_meters_no_meter_is_set_when_a_switch_or_a_port_comes_up():
    core = Controller(directory(DIRECTORY), policy(POLICY + "protection: {meters: false}\n"))
    messages = core.switch_up(7, [1, 2], 100.0)
    assert not [m for m in messages if isinstance(m, (MeterSet, MetersClear))]
    assert not [m for m in messages if isinstance(m, FlowAdd) and m.meter is not None]
    (probe,) = core.port_changed(7, 3, True, 101.0)
    assert (type(probe), probe.dpid, probe.port) == (PacketOut, 7, 3)


def test_a_port_that_comes_up_gets_its_meter_and_a_probe_and_one_that_goes_down_is_not_probed():
    net = Net()
    up = net.core.port_changed(1, 4, True, net.now)
    assert [type(m) for m in up] == [MeterSet, FlowAdd, FlowAdd, FlowAdd, PacketOut]
    assert up[0] == MeterSet(1, 4, rate=2000, burst=2000)
    assert {m.match_dict()["in_port"] for m in up[1:4]} == {4} and {m.dpid for m in up} == {1}
    assert (up[4].dpid, up[4].port) == (1, 4)
    assert (1, 4) in net.core.topology.edge_ports()
    net.fabric.apply(net.core.port_changed(1, 4, False, net.now))
    probed = set()
    for _ in range(10):
        probed |= {(m.dpid, m.port) for m in net.core.discover(net.now)}
    assert (1, 4) not in probed and (1, 3) in probed and (1, 10) in probed


def test_a_switch_that_reconnects_loses_its_connections_and_bindings_and_no_entry_is_left_behind():
    net = Net()
    net.announce()
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    net.send(1, 1, icmp(WEB, DB, "10.0.0.1", "10.0.0.2", 8))
    net.send(2, 2, icmp(APP, DB, "10.0.0.3", "10.0.0.2", 8))
    assert len(net.core.connections) == 3
    net.now += 1
    before = len(net.core.events.latest(100_000))
    net.fabric.apply(net.core.switch_up(1, [1, 2, 3, 10, 11], net.now))
    events = net.core.events.latest(100_000)[before:]
    assert [(e["kind"], e.get("reason"), e["time"]) for e in events] == [
        ("revoke", "switch reconnected or left", round(net.now, 6)),
        ("revoke", "switch reconnected or left", round(net.now, 6)),
        ("switch-up", None, round(net.now, 6)),
    ]
    assert [c.src.name for c in net.core.connections] == ["app"]
    assert net.disagreements() == []
    assert net.core.bindings.location(WEB) is None and net.core.bindings.location(DB) == (2, 1)


def test_a_switch_that_leaves_takes_its_links_connections_and_port_state_with_it():
    policy_text = POLICY + "protection: {denied_rate: 0.1, denied_burst: 3}\n"
    net = Net(policy_text)
    net.announce()
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    (connection,) = net.core.connections
    spine = connection.switches[1]
    other = 102 if spine == 101 else 101
    net.now += 1
    before = len(net.core.events.latest(100_000))
    messages = net.core.switch_down(spine, net.now)
    assert spine not in {m.dpid for m in messages}
    net.fabric.apply(messages)
    for _ in range(10):  # nor is it probed any more
        assert spine not in {m.dpid for m in net.core.discover(net.now)}
    events = net.core.events.latest(100_000)[before:]
    assert [(e["kind"], e.get("reason")) for e in events] == [
        ("revoke", "switch reconnected or left"),
        ("link-down", None),
        ("link-down", None),
        ("switch-down", None),
    ]
    assert all(e["time"] == round(net.now, 6) for e in events)
    leaf_port = 10 if spine == 101 else 11
    assert [(e["link"], e["links"]) for e in events if e["kind"] == "link-down"] == [
        (f"1/{leaf_port}-{spine}/1", 3),
        (f"2/{leaf_port}-{spine}/2", 2),
    ]
    assert events[-1] == {"time": round(net.now, 6), "kind": "switch-down", "dpid": spine}
    # no entry of the connection is left on the switches still there (the one gone is wiped
    # when it connects again)
    assert [p for p in net.disagreements() if f"dpid={spine}," not in p] == []
    assert sorted(net.core.topology.links()) == sorted(
        (a, ap, b, bp)
        for a, ap, b, bp in [(1, 10, 101, 1), (1, 11, 102, 1), (2, 10, 101, 2), (2, 11, 102, 2)]
        if other in (a, b)
    )
    # the connection comes back over the other spine
    net.send(1, 1, seg(WEB, DB, 40001, 5432))
    assert [c.switches for c in net.core.connections] == [[1, other, 2]]


def test_a_leaf_that_leaves_takes_its_links_down_with_events():
    net = Net()
    net.now += 1
    before = len(net.core.events.latest(100_000))
    net.fabric.apply(net.core.switch_down(1, net.now))
    events = net.core.events.latest(100_000)[before:]
    assert [(e["kind"], e.get("link")) for e in events] == [
        ("link-down", "1/10-101/1"),
        ("link-down", "1/11-102/1"),
        ("switch-down", None),
    ]
    assert sorted(net.core.topology.links()) == [(2, 10, 101, 2), (2, 11, 102, 2)]


def test_a_switch_that_comes_back_starts_with_fresh_budgets_and_no_flood_hold():
    net = Net(POLICY + "protection: {denied_rate: 0.1, denied_burst: 3, flood_hold: 60}\n")
    for port in range(3):
        net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", port, 5432))
    assert kinds(net, "flood") == []
    net.fabric.apply(net.core.switch_down(1, net.now))
    net.fabric.apply(net.core.switch_up(1, [1, 2, 3, 10, 11], net.now))
    net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 9, 5432))
    assert kinds(net, "flood") == []
    net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 10, 5432))
    net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 11, 5432))
    net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 12, 5432))
    assert len(kinds(net, "flood")) == 1
    # the switch leaves and comes back: it lost its flood entry, the controller its hold
    net.fabric.apply(net.core.switch_down(1, net.now))
    net.fabric.apply(net.core.switch_up(1, [1, 2, 3, 10, 11], net.now))
    before = len(net.core.events.latest(100_000))
    net.send(1, 3, arp_request("02:00:00:00:00:98", "10.0.0.8", "10.0.0.8"))
    assert [e["kind"] for e in net.core.events.latest(100_000)[before:]] == ["deny"]


# -- links -----------------------------------------------------------------------------------
def test_links_are_found_by_signed_probes_once_each():
    core = Controller(directory(DIRECTORY), policy(POLICY))
    one = core.switch_up(1, [1, 10], 100.0)
    core.switch_up(101, [1], 100.0)
    (probe,) = [m for m in one if isinstance(m, PacketOut) and m.port == 10]
    assert core.packet_in(101, 1, probe.data, 100.5) == []
    assert core.events.latest(1) == [{"time": 100.5, "kind": "link-up", "link": "1/10-101/1", "links": 1}]
    assert core.topology.links() == [(1, 10, 101, 1)]
    core.packet_in(101, 1, probe.data, 100.6)  # the same link again: no news
    assert core.events.latest(1)[0]["time"] == 100.5


def test_probes_that_prove_nothing_are_rejected_and_say_why():
    net = Net()
    net.announce()
    before = len(net.core.events.latest(100_000))
    forged = bytearray(net.core.discovery.probe(1, 3, net.now))
    forged[-3] ^= 0xFF  # the signature
    net.send(2, 3, bytes(forged))
    events = net.core.events.latest(100_000)[before:]
    assert events == [
        {
            "time": round(net.now, 6),
            "kind": "lldp-rejected",
            "dpid": 2,
            "port": 3,
            "reason": "forged LLDP (bad signature)",
        }
    ]
    # a genuine probe from 1/3 arriving at db's port: a host relays probes
    net.send(2, 1, net.core.discovery.probe(1, 3, net.now))
    assert net.core.events.latest(1) == [
        {
            "time": round(net.now, 6),
            "kind": "lldp-rejected",
            "dpid": 2,
            "port": 1,
            "reason": "probe from 1/3 crossed port 2/1, where host db is bound: relayed by a host?",
        }
    ]
    links = sorted(net.core.topology.links())
    # a probe back at its own port, or from a switch that is not connected: no link, no event
    before = len(net.core.events.latest(100_000))
    net.send(1, 3, net.core.discovery.probe(1, 3, net.now))
    net.send(1, 3, net.core.discovery.probe(999, 1, net.now))
    assert sorted(net.core.topology.links()) == links
    assert net.core.events.latest(100_000)[before:] == []


def test_a_link_is_kept_while_probes_cross_it_in_either_direction():
    net = Net()
    t0 = net.now
    assert (1, 10, 101, 1) in net.core.topology.links()
    # from now on only 1/10's probes cross it (101/1's are lost)
    net.now = t0 + 2.0
    probe = net.core.discovery.probe(1, 10, net.now)
    net.fabric.apply(net.core.packet_in(101, 1, probe, net.now))
    net.now = t0 + LINK_TIMEOUT + 0.5
    net.fabric.apply(net.core.discover(net.now))
    assert (1, 10, 101, 1) in net.core.topology.links()
    assert len(net.core.topology.links()) == 1


def test_links_no_probe_crossed_for_link_timeout_go_and_take_their_connections():
    net = Net()
    net.announce()
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    net.send(1, 1, icmp(WEB, DB, "10.0.0.1", "10.0.0.2", 8))
    spine = net.core.connections.by_id[min(net.core.connections.by_id)].switches[1]
    t0 = net.now
    for where in net.fabric.links:
        cross(net, *where)
    # from now on only the probes that do not go through `spine` cross
    net.now = t0 + LINK_TIMEOUT
    for where, peer in net.fabric.links.items():
        if spine not in (where[0], peer[0]):
            cross(net, *where)
    net.fabric.apply(net.core.discover(net.now))
    assert len(net.core.topology.links()) == 4, "gone before LINK_TIMEOUT was over"
    net.now = t0 + LINK_TIMEOUT + 0.01
    before = len(net.core.events.latest(100_000))
    net.fabric.apply(net.core.discover(net.now))
    events = net.core.events.latest(100_000)[before:]
    assert [e["kind"] for e in events] == ["revoke", "revoke", "link-down", "link-down"]
    assert all(e["time"] == round(net.now, 6) for e in events)
    assert all(e["reason"] == "link down" for e in events[:2])
    assert len(net.core.connections) == 0
    assert net.disagreements() == []


def cross(net, dpid, port):
    """The controller's probe out of (dpid, port) crosses its link now."""
    probe = net.core.discovery.probe(dpid, port, net.now)
    net.fabric.apply(net.core.packet_in(*net.fabric.links[(dpid, port)], probe, net.now))


# -- packets in transit ----------------------------------------------------------------------
def test_a_packet_that_overtook_its_entries_is_sent_on_along_its_connection():
    net = Net()
    net.announce()
    first = seg(WEB, DB, 40000, 5432)
    net.send(1, 1, first)
    (connection,) = net.core.connections
    spine_hop = connection.path[1]
    # the client's SYN again, reaching the spine before its entries: along the path, not denied
    sent = net.send(spine_hop.dpid, spine_hop.in_port, first)
    assert sent == [PacketOut(spine_hop.dpid, spine_hop.out_port, first, spine_hop.in_port)]
    assert net.follow(sent[0]) == ("out", *ATTACHED[DB])
    # db's answer reaching the spine: the reverse way
    answer = seg(DB, WEB, 5432, 40000, flags=0x12)
    sent = net.send(spine_hop.dpid, spine_hop.out_port, answer)
    assert sent == [PacketOut(spine_hop.dpid, spine_hop.in_port, answer, spine_hop.out_port)]
    # a later fragment of the pair reaching the spine first
    piece = ipv4(WEB, DB, "10.0.0.1", "10.0.0.2", 6, b"x" * 16, flags_fragment=185)
    sent = net.send(spine_hop.dpid, spine_hop.in_port, piece)
    assert outs(sent) == [PacketOut(spine_hop.dpid, spine_hop.out_port, piece, spine_hop.in_port)]
    assert net.core.packet_ins >= 3


def test_every_packet_in_is_counted():
    core = Controller(directory(DIRECTORY), policy(POLICY))
    assert core.packet_ins == 0
    core.switch_up(1, [1, 2], 100.0)
    for i in range(3):
        core.packet_in(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"), 100.0 + i)
    assert core.packet_ins == 3


def test_an_icmp_error_about_a_connection_goes_to_the_host_it_is_about():
    net = Net()
    net.announce()
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    # web's port unreachable about db's answer (db -> web), quoted after 4 unused bytes
    answer = seg(DB, WEB, 5432, 40000, flags=0x12)
    error = icmp(WEB, DB, "10.0.0.1", "10.0.0.2", 3, 3, b"\0" * 4 + answer[14:42])
    sent = net.send(1, 1, error)
    assert outs(sent) == [PacketOut(2, 1, error)]


# -- rate limits -----------------------------------------------------------------------------
FLOODY = POLICY + "protection: {packet_in_rate: 1, packet_in_burst: 3, flood_hold: 5}\n"


def test_a_port_past_its_packet_in_budget_is_held_and_others_are_not():
    net = Net(FLOODY)
    net.announce()  # one packet-in each from 1/1, 2/1, 2/2
    for _ in range(2):
        net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
        net.send(1, 2, arp_request(ROGUE, "10.0.0.9", "10.0.0.9"))
    assert kinds(net, "flood") == []
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    t = net.now
    assert kinds(net, "flood") == [
        {
            "time": round(t, 6),
            "kind": "flood",
            "dpid": 1,
            "port": 1,
            "hosts": ["web"],
            "reason": "more than 1 packet-ins/s; new traffic dropped for 5 s",
        }
    ]
    (entry,) = [e for e in net.fabric.entries(1) if e.match == match_of(in_port=1)]
    assert parse_cookie(entry.cookie)[0] == Kind.FLOOD and entry.hard_timeout == 5 and entry.actions == ()
    # while held, the port's packet-ins are ignored (they were sent before the drop took hold)
    before = len(net.core.events.latest(100_000))
    assert net.core.packet_in(1, 1, seg(WEB, DB, 1, 5432), t + 1) == []
    assert net.core.events.latest(100_000)[before:] == []
    # switch links are never held, however busy
    probe = net.core.discovery.probe(101, 1, t)
    for _ in range(10):
        net.core.packet_in(1, 10, probe, t)
    assert len(kinds(net, "flood")) == 1
    # once the hold is over, the port is heard again
    assert net.core.packet_in(1, 1, seg(WEB, DB, 2, 22), t + 5)
    assert kinds(net, "deny")[-1]["dst_port"] == 22


def test_a_port_past_its_denial_budget_is_held_and_denials_elsewhere_do_not_count():
    net = Net(POLICY + "protection: {denied_rate: 0.1, denied_burst: 3}\n")
    net.announce()
    for port in range(3):
        net.send(1, 1, seg(WEB, DB, 40000 + port, 22))
        net.send(2, 2, tcp(APP, DB, "10.0.0.3", "10.0.0.2", 40000 + port, 22))
    assert kinds(net, "flood") == []
    net.send(1, 1, seg(WEB, DB, 40009, 22))
    (flood,) = kinds(net, "flood")
    assert (flood["dpid"], flood["port"], flood["reason"]) == (
        1,
        1,
        "more than 0.1 denials/s; new traffic dropped for 5 s",
    )


# -- first packets held for their destination -------------------------------------------------
RULES_TO_APP = POLICY + "  - {name: web-to-app, from: {role: web}, to: {role: app}, proto: tcp, ports: [8080]}\n"


def test_first_packets_wait_for_their_destination_and_all_of_them_go_when_it_shows():
    net = Net()
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    for port in range(PENDING_PER_HOST + 1):
        net.send(1, 1, seg(WEB, DB, 40000 + port, 5432))
    assert len(net.core.connections) == 0
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    opened = sorted(c.key.src_port for c in net.core.connections)
    assert opened == [40000 + port for port in range(PENDING_PER_HOST)]
    assert net.disagreements() == []


def test_a_held_packet_goes_only_within_pending_hold():
    net = Net()
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    net.now = net.now + PENDING_HOLD
    net.fabric.apply(net.core.packet_in(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"), net.now))
    assert len(net.core.connections) == 0


def test_a_held_packet_for_a_host_that_is_then_quarantined_is_never_delivered():
    net = Net()
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    net.fabric.apply(net.core.quarantine("db", "EDR", net.now))
    net.fabric.apply(net.core.release("db", net.now))
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    assert len(net.core.connections) == 0


def test_the_controller_looks_for_a_destination_at_most_once_per_probe_interval_where_it_may_be():
    net = Net(RULES_TO_APP)
    net.send(1, 3, arp_request(ROGUE, "10.0.0.9", "10.0.0.9"))  # a stranger at 1/3
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    t = net.now
    sent = net.core.packet_in(1, 1, seg(WEB, DB, 40000, 5432), t)
    edge = {(1, 2), (2, 1), (2, 2)}  # not web's port, not the stranger's
    assert {(m.dpid, m.port) for m in outs(sent)} == edge
    request = parse_frame(outs(sent)[0].data)
    assert request.eth_src == LOCATOR_MAC
    assert (request.arp.sender_mac, request.arp.sender_ip, request.arp.target_ip) == (WEB, "10.0.0.1", "10.0.0.2")
    assert outs(net.core.packet_in(1, 1, seg(WEB, DB, 40001, 5432), t + PROBE_INTERVAL / 2)) == []
    assert {
        (m.dpid, m.port) for m in outs(net.core.packet_in(1, 1, seg(WEB, DB, 40002, 5432), t + PROBE_INTERVAL))
    } == edge
    # app is pinned to 2/2: it is looked for there only
    sent = net.core.packet_in(1, 1, seg(WEB, APP, 40000, 8080), t + PROBE_INTERVAL)
    assert {(m.dpid, m.port) for m in outs(sent)} == {(2, 2)}


def test_a_destination_without_a_directory_address_is_looked_for_until_it_shows():
    hosts = DIRECTORY.replace("ip: 10.0.0.2, ", "")
    net = Net(core=Controller(directory(hosts), policy(POLICY)))
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    sent = net.send(1, 1, seg(WEB, DB, 40000, 5432))
    assert outs(sent) and len(net.core.connections) == 0
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    assert [c.rule for c in net.core.connections] == ["web-to-db"]


# -- ARP -------------------------------------------------------------------------------------
def test_a_host_checking_its_own_address_gets_no_answer_even_in_monitor_mode():
    net = Net("mode: monitor\nrules: []\n")
    net.announce()
    # RFC 5227 probe: sender address 0.0.0.0, target its own address; an answer says "taken"
    probe = build_arp(1, WEB, "ff:ff:ff:ff:ff:ff", WEB, "0.0.0.0", "00:00:00:00:00:00", "10.0.0.1")
    assert outs(net.send(1, 1, probe)) == []
    # nor does anyone get an answer for an address nobody has
    assert outs(net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.77"))) == []
    # while an address that is someone's is answered for (monitor mode: whatever the rules)
    (answer,) = outs(net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2")))
    reply = parse_frame(answer.data)
    assert (reply.arp.op, reply.arp.sender_mac, reply.arp.sender_ip) == (ARP_REPLY, DB, "10.0.0.2")
    assert answer.data[:6] == mac_bytes(WEB)


# -- reload ----------------------------------------------------------------------------------
def test_a_reload_clears_cached_denials_on_every_switch_and_is_confirmed_by_each():
    net = Net()
    net.announce()
    bad = seg(WEB, DB, 40000, 22)
    net.send(1, 1, bad)
    assert net.trace(1, 1, bad) == ("drop", 1)
    net.fabric.barriers.clear()
    opened = POLICY + "  - {name: ssh, from: {role: web}, to: {role: db}, proto: tcp, ports: [22]}\n"
    messages, revoked = net.core.reload(directory(DIRECTORY), policy(opened), net.now)
    net.fabric.apply(messages)
    assert revoked == 0
    assert sorted(net.fabric.barriers) == [1, 2, 101, 102]
    assert net.trace(1, 1, bad) == ("controller", 1)


def test_a_reload_to_monitor_mode_keeps_every_connection_and_a_relabelled_host_stays_bound():
    net = Net()
    net.announce()
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    relabelled = DIRECTORY.replace("labels: {role: web}", "labels: {role: web, env: prod}")
    messages, revoked = net.core.reload(directory(relabelled), policy("mode: monitor\nrules: []\n"), net.now)
    net.fabric.apply(messages)
    assert revoked == 0 and len(net.core.connections) == 1
    assert views.find_host_view(net.core.ledger, "web")["labels"] == {"role": "web", "env": "prod"}
    net.fabric.apply(net.core.port_changed(1, 1, False, net.now))
    assert kinds(net, "unbind")[-1]["host"] == "web"
    assert len(net.core.connections) == 0 and net.disagreements() == []


def test_hosts_sharing_a_port_that_goes_down_lose_every_connection():
    hosts = DIRECTORY.replace(
        'app: {mac: "02:00:00:00:00:03", ip: 10.0.0.3, labels: {role: app}, switch: 2, port: 2}',
        'app: {mac: "02:00:00:00:00:03", ip: 10.0.0.3, labels: {role: app}}',
    )
    two_ways = POLICY + "  - {name: app-to-web, from: {role: app}, to: {role: web}, proto: tcp, ports: [80]}\n"
    net = Net(core=Controller(directory(hosts), policy(two_ways)))
    # web and db behind one port (a hub at 1/3); app at 2/2
    net.send(1, 3, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    net.send(1, 3, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    net.send(2, 2, arp_request(APP, "10.0.0.3", "10.0.0.3"))
    net.send(2, 2, tcp(APP, WEB, "10.0.0.3", "10.0.0.1", 40000, 80))
    net.send(2, 2, icmp(APP, DB, "10.0.0.3", "10.0.0.2", 8))
    assert len(net.core.connections) == 2
    net.fabric.apply(net.core.port_changed(1, 3, False, net.now))
    assert len(net.core.connections) == 0
    assert net.disagreements() == []


# -- the wire --------------------------------------------------------------------------------
def test_everything_the_controller_sends_is_addressed_to_a_switch_and_encodes():
    """Whatever happens, each message names a connected switch and becomes OpenFlow bytes
    (no field left empty: a drop has no actions, not None; a packet-out carries the packet)."""
    net = Net()
    sent = []
    apply = net.fabric.apply
    net.fabric.apply = lambda messages: sent.extend(messages) or apply(messages)
    net.restart(net.core)
    net.announce()
    first = seg(WEB, DB, 40000, 5432)
    net.send(1, 1, first)
    net.send(1, 1, first)  # again, before its entries took hold
    net.send(2, 1, seg(DB, WEB, 5432, 40000))  # the server's SYN along it
    net.send(1, 1, seg(WEB, DB, 40000, 22))
    net.send(1, 1, tcp(WEB, ROGUE, "10.0.0.1", "10.0.0.9", 40000, 5432))  # not a directory host
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.3", 40000, 5432))  # db's MAC, app's address
    net.send(1, 3, tcp(ROGUE, DB, "10.0.0.9", "10.0.0.2", 1, 5432))
    net.send(2, 1, seg(DB, WEB, 5432, 40001, flags=ACK))
    net.fabric.apply(net.core.quarantine("web", "EDR", net.now))
    net.send(2, 2, tcp(APP, WEB, "10.0.0.3", "10.0.0.1", 40000, 80))  # to a quarantined host
    net.fabric.apply(net.core.release("web", net.now))
    net.fabric.apply(net.core.quarantine(ROGUE, "unknown", net.now))
    net.fabric.apply(net.core.release(ROGUE, net.now))
    net.fabric.apply(net.core.reload(directory(DIRECTORY), policy(POLICY), net.now)[0])
    net.fabric.apply(net.core.port_changed(1, 4, True, net.now))
    net.fabric.apply(net.core.switch_down(101, net.now))
    switches = {1, 2, 101, 102}
    assert sent
    for message in sent:
        assert message.dpid in switches, message
        if not isinstance(message, Barrier):
            assert ofmsg.encode(message), message
    # each cached denial is the exact flow at the port it came in by
    denials = [m for m in sent if isinstance(m, FlowAdd) and parse_cookie(m.cookie)[0] == Kind.DENY]
    assert {(m.dpid, m.match_dict()["in_port"], m.match_dict()["tcp_dst"]) for m in denials} == {
        (2, 1, 40000),
        (1, 1, 22),
        (1, 1, 5432),
        (2, 2, 80),
    }


def test_a_released_packet_is_decided_afresh_with_the_time_it_goes():
    """The held first packet goes when its destination binds: its connection starts then, and
    its `allow` event says so, with the packet's own addresses and ports."""
    net = Net()
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    net.send(1, 1, seg(WEB, DB, 40000, 5432))
    net.now += 1.0
    rec = Recorder(net)
    sent = net.fabric.apply(net.core.packet_in(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"), net.now))
    (connection,) = net.core.connections
    assert connection.created == net.now and (connection.path[0].dpid, connection.path[0].in_port) == (1, 1)
    (allow,) = [e for e in rec.new() if e["kind"] == "allow"]
    assert (allow["time"], allow["src"], allow["dst"], allow["src_ip"], allow["dst_port"]) == (
        at(net),
        "web",
        "db",
        "10.0.0.1",
        5432,
    )
    assert [m.data for m in sent if isinstance(m, PacketOut) and m.data[12:14] == b"\x08\x00"] == [
        seg(WEB, DB, 40000, 5432)
    ]
