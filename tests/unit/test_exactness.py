"""Exactness of the controller's decisions and of what it installs and removes, driven on the
fake fabric (issue 18: each property here was broken by a mutation of segctl/core/ that the
unit tests once let survive). Expected ports come from where the hosts are plugged in
(fakenet.ATTACHED, LINKS), never from what the controller answered."""

import pytest

from segctl.core.controller import Controller
from segctl.core.flows import PacketOut
from segctl.core.pipeline import Kind, make_cookie, parse_cookie

from ..fakenet import (
    APP,
    ATTACHED,
    DB,
    DIRECTORY,
    LINKS,
    POLICY,
    WEB,
    Net,
    arp_request,
    icmp,
    tcp,
)
from ..fakeswitch import FlowRemoved
from .helpers import directory, policy

IP = {WEB: "10.0.0.1", DB: "10.0.0.2", APP: "10.0.0.3"}
ACK = 0x10

# web may reach db on tcp/5432 and udp/53, anyone may ping db.
TWO_PROTOCOLS = """
rules:
  - {name: web-to-db, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
  - {name: web-to-db-dns, from: {role: web}, to: {role: db}, proto: udp, ports: [53]}
  - {name: ping-db, from: any, to: {role: db}, proto: icmp}
"""


def events(net, kind):
    return [e for e in net.core.events.latest(1000) if e["kind"] == kind]


def segment(src, dst, sport, dport, proto=6, flags=0x02):
    """A TCP segment, a UDP datagram (proto 17) or an ICMP message (proto 1: sport is the type,
    dport the code)."""
    if proto == 1:
        return icmp(src, dst, IP[src], IP[dst], sport, dport)
    return tcp(src, dst, IP[src], IP[dst], sport, dport, proto=proto, flags=flags)


def reply_to(src, dst, sport, dport, proto=6):
    """The answer to segment(src, dst, sport, dport, proto): an ACK for TCP, an echo reply to
    an echo request."""
    if proto == 1:
        return segment(dst, src, 0, dport, proto)
    return segment(dst, src, dport, sport, proto=proto, flags=ACK)


def forwards(net, src, dst, sport, dport, proto=6) -> bool:
    """Both directions of the connection go host to host on the switches alone."""
    there = net.trace(*ATTACHED[src], segment(src, dst, sport, dport, proto, flags=ACK))
    back = net.trace(*ATTACHED[dst], reply_to(src, dst, sport, dport, proto))
    return there == ("out", *ATTACHED[dst]) and back == ("out", *ATTACHED[src])


def open_connection(net, src, dst, sport, dport, proto=6):
    net.send(*ATTACHED[src], segment(src, dst, sport, dport, proto))
    assert forwards(net, src, dst, sport, dport, proto)


# -- protocol exactness ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("proto", "port", "other"),
    [(17, 5432, "tcp"), (6, 53, "udp")],
    ids=["udp-to-a-tcp-port", "tcp-to-a-udp-port"],
)
def test_a_rule_for_one_transport_protocol_allows_nothing_on_the_other(proto, port, other):
    net = Net(TWO_PROTOCOLS)
    net.announce()
    wrong = segment(WEB, DB, 40000, port, proto=proto)
    sent = net.send(1, 1, wrong)
    assert not [m for m in sent if isinstance(m, PacketOut)]
    assert net.trace(1, 1, wrong) == ("drop", 1)
    assert len(net.core.connections) == 0
    (deny,) = events(net, "deny")
    assert deny["reason"] == "no rule allows it (default deny)"
    assert deny["proto"] == ("udp" if proto == 17 else "tcp") and deny["dst_port"] == port
    # the same port under the protocol its rule names still opens, past the exact drop
    right = 6 if proto == 17 else 17
    open_connection(net, WEB, DB, 40000, port, proto=right)
    assert [c.rule for c in net.core.connections] == ["web-to-db" if other == "tcp" else "web-to-db-dns"]


@pytest.mark.parametrize(("proto", "other"), [(6, 17), (17, 6)], ids=["tcp-connection", "udp-connection"])
def test_a_connections_entries_carry_only_its_own_protocol_both_ways(proto, other):
    """Same addresses, same ports, the other transport protocol: none of the connection's
    entries, forward or reply, takes it (it goes to the controller)."""
    net = Net(TWO_PROTOCOLS)
    net.announce()
    port = 5432 if proto == 6 else 53
    open_connection(net, WEB, DB, 40000, port, proto)
    assert net.trace(1, 1, segment(WEB, DB, 40000, port, proto=other, flags=ACK)) == ("controller", 1)
    assert net.trace(2, 1, reply_to(WEB, DB, 40000, port, proto=other)) == ("controller", 2)
    assert forwards(net, WEB, DB, 40000, port, proto)


# -- destination identity ----------------------------------------------------------------------
TWO_SERVICES = """
rules:
  - {name: web-to-db, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
  - {name: web-to-app, from: {role: web}, to: {role: app}, proto: tcp, ports: [5432]}
"""


@pytest.mark.parametrize(("mac", "ip", "name"), [(DB, "10.0.0.3", "db"), (APP, "10.0.0.2", "app")])
def test_the_destination_mac_and_ip_must_be_the_same_host(mac, ip, name):
    """web may reach both db and app on 5432, but not db's MAC with app's IP (or the other way
    round): that packet would reach one host carrying the other's address."""
    net = Net(TWO_SERVICES)
    net.announce()
    mixed = tcp(WEB, mac, "10.0.0.1", ip, 40000, 5432)
    sent = net.send(1, 1, mixed)
    assert not [m for m in sent if isinstance(m, PacketOut)]
    assert net.trace(1, 1, mixed) == ("drop", 1)
    assert len(net.core.connections) == 0
    (deny,) = events(net, "deny")
    assert (deny["dst"], deny["reason"]) == (name, f"{ip} is not the address of {name}")
    for host in (DB, APP):  # with MAC and IP agreeing, each is reached where it is plugged in
        matching = tcp(WEB, host, "10.0.0.1", IP[host], 40001, 5432)
        net.send(1, 1, matching)
        assert net.trace(1, 1, matching) == ("out", *ATTACHED[host])


def test_a_destination_s_learned_address_is_its_only_address():
    """A host without a directory address is reachable at the address it was bound with only."""
    core = Controller(
        directory(DIRECTORY + '  cache: {mac: "02:00:00:00:00:04", labels: {role: db}}\n'), policy(POLICY)
    )
    net = Net(core=core)
    net.announce()
    cache = "02:00:00:00:00:04"
    net.send(1, 2, arp_request(cache, "10.0.0.4", "10.0.0.4"))
    for ip in ("10.0.0.5", "10.0.0.2"):
        mixed = tcp(WEB, cache, "10.0.0.1", ip, 40000, 5432)
        net.send(1, 1, mixed)
        assert net.trace(1, 1, mixed) == ("drop", 1)
        assert events(net, "deny")[-1]["reason"] == f"{ip} is not the address of cache"
    right = tcp(WEB, cache, "10.0.0.1", "10.0.0.4", 40001, 5432)
    net.send(1, 1, right)
    assert net.trace(1, 1, right) == ("out", 1, 2)


# -- revocation precision ----------------------------------------------------------------------
def _four_connections(net):
    """Three web -> db connections over the same three switches (two TCP, one UDP) and app's
    ping to db, which shares switch 2 with them."""
    net.announce()
    open_connection(net, WEB, DB, 40000, 5432)
    open_connection(net, WEB, DB, 40001, 5432)
    open_connection(net, WEB, DB, 40002, 53, proto=17)
    open_connection(net, *PING_D)
    assert len(net.core.connections) == 4


TCP_A, TCP_B, UDP_C = (WEB, DB, 40000, 5432, 6), (WEB, DB, 40001, 5432, 6), (WEB, DB, 40002, 53, 17)
PING_D = (APP, DB, 8, 0, 1)  # an echo request


def _busy(connections):
    """Packets that keep these connections' entries (both directions) from idling out."""
    keep = []
    for src, dst, sport, dport, proto in connections:
        keep.append((*ATTACHED[src], segment(src, dst, sport, dport, proto, flags=ACK)))
        keep.append((*ATTACHED[dst], reply_to(src, dst, sport, dport, proto)))
    return keep


def _expire_the_ping(net):
    net.advance(11, keep=_busy([TCP_A, TCP_B, UDP_C]))  # ICMP idles out after 10 s
    return [TCP_A, TCP_B, UDP_C]


def _reload_without_ping(net):
    net.fabric.apply(
        net.core.reload(directory(DIRECTORY), policy(TWO_PROTOCOLS.split("  - {name: ping")[0]), net.now)[0]
    )
    return [TCP_A, TCP_B, UDP_C]


def _reload_without_udp(net):
    """The revoked connection shares every switch with two that stay."""
    without = TWO_PROTOCOLS.replace(
        "  - {name: web-to-db-dns, from: {role: web}, to: {role: db}, proto: udp, ports: [53]}\n", ""
    )
    net.fabric.apply(net.core.reload(directory(DIRECTORY), policy(without), net.now)[0])
    return [TCP_A, TCP_B, PING_D]


def _app_port_down(net):
    net.fabric.apply(net.core.port_changed(2, 2, False, net.now))
    return [TCP_A, TCP_B, UDP_C]


def _quarantine_app(net):
    net.fabric.apply(net.core.quarantine("app", "test", net.now))
    return [TCP_A, TCP_B, UDP_C]


def _link_down(net):
    """web's three connections cross the link; app's ping does not, and stays."""
    spine = next(iter(net.core.connections)).path[1].dpid
    link = next(link for link in LINKS if link[0] == 1 and link[2] == spine)
    net.fabric.apply(net.core.link_down(*link, net.now))
    return [PING_D]


@pytest.mark.parametrize(
    "revoke",
    [_expire_the_ping, _reload_without_ping, _reload_without_udp, _app_port_down, _quarantine_app, _link_down],
    ids=["expiry", "reload-drops-rule", "reload-drops-rule-on-shared-path", "port-down", "quarantine", "link-down"],
)
def test_ending_one_connection_leaves_every_other_forwarding_on_the_switches(revoke):
    net = Net(TWO_PROTOCOLS)
    _four_connections(net)
    kept = revoke(net)
    live = {(c.key.src_mac, c.key.dst_mac, c.key.src_port, c.key.dst_port, c.key.proto) for c in net.core.connections}
    assert live == set(kept)
    for connection in kept:
        assert forwards(net, *connection), connection
    assert net.disagreements() == []
    # the switches echoed the deletes of ingress entries (an expired one has none left to
    # delete); the controller ended nothing more for them
    echoes = [answer for removal, answer in net.removals if removal.reason == "delete"]
    assert all(answer == [] for answer in echoes) and (echoes or revoke is _expire_the_ping)


# -- FlowRemoved that is not the connection's own ---------------------------------------------
def test_a_flow_removed_that_is_not_the_connections_ingress_entry_ends_nothing():
    net = Net()
    net.announce()
    open_connection(net, WEB, DB, 40000, 5432)
    (connection,) = net.core.connections
    kind, host, ident = parse_cookie(connection.cookie)
    stale = (
        [
            FlowRemoved(1, make_cookie(Kind.CONNECTION, host + 1, ident), "idle_timeout", 20000, ()),  # another host's
            FlowRemoved(1, make_cookie(Kind.DENY, host, ident), "hard_timeout", 30000, ()),  # another kind
            FlowRemoved(1, connection.cookie | 1 << 56, "delete", 20000, ()),  # not segctl's magic
        ]
        + [FlowRemoved(dpid, connection.cookie, "idle_timeout", 20000, ()) for dpid in connection.switches[1:]]
    )
    for removal in stale:
        net.fabric.apply(net.flow_removed(removal))
        assert net.removals[-1][1] == [], removal
        assert list(net.core.connections) == [connection]
        assert forwards(net, WEB, DB, 40000, 5432)
    # its own removal, from its ingress switch, ends it everywhere
    net.fabric.apply(net.flow_removed(FlowRemoved(1, connection.cookie, "idle_timeout", 20000, ())))
    assert len(net.core.connections) == 0 and net.disagreements() == []
    assert net.trace(1, 1, segment(WEB, DB, 40000, 5432, flags=ACK)) == ("controller", 1)


# -- the first packet --------------------------------------------------------------------------
def test_the_first_packet_leaves_by_the_way_to_its_destination():
    net = Net()
    net.announce()
    ping = segment(*PING_D)  # app and db share leaf 2
    outs = [m for m in net.send(*ATTACHED[APP], ping) if isinstance(m, PacketOut)]
    assert outs == [PacketOut(2, ATTACHED[DB][1], ping, ATTACHED[APP][1])]
    syn = segment(WEB, DB, 40000, 5432)  # web is on leaf 1: out by a port facing a spine
    (out,) = [m for m in net.send(*ATTACHED[WEB], syn) if isinstance(m, PacketOut)]
    uplinks = {a_port for a, a_port, _, _ in LINKS if a == 1}
    assert (out.dpid, out.in_port, out.data) == (1, ATTACHED[WEB][1], syn) and out.port in uplinks
    assert net.follow(out) == ("out", *ATTACHED[DB])


# -- reload re-checks every binding ------------------------------------------------------------
WEB_LINE = '  web: {mac: "02:00:00:00:00:01", ip: 10.0.0.1, labels: {role: web}}\n'
DB_LINE = '  db:  {mac: "02:00:00:00:00:02", ip: 10.0.0.2, labels: {role: db}}\n'


@pytest.mark.parametrize(
    ("changed", "unbound", "problem"),
    [
        (DIRECTORY.replace(WEB_LINE, WEB_LINE.replace("}}", "}, switch: 2}")), WEB, "pin"),
        (
            DIRECTORY.replace(WEB_LINE, WEB_LINE.replace("port: 1", "").replace("}}", "}, switch: 1, port: 2}")),
            WEB,
            "pin",
        ),
        (DIRECTORY.replace(WEB_LINE, WEB_LINE.replace("10.0.0.1", "10.0.0.11")), WEB, "ip"),
        (DIRECTORY.replace(DB_LINE, ""), DB, None),
    ],
    ids=["pinned-to-another-switch", "pinned-to-another-port", "new-address", "removed"],
)
def test_a_reload_unbinds_what_the_new_directory_forbids_and_revokes_its_connections(changed, unbound, problem):
    net = Net()
    net.announce()
    open_connection(net, WEB, DB, 40000, 5432)
    open_connection(net, *PING_D)
    messages, revoked = net.core.reload(directory(changed), policy(POLICY), net.now)
    net.fabric.apply(messages)
    assert net.core.bindings.location(unbound) is None
    assert [e["host"] for e in events(net, "unbind")] == [{WEB: "web", DB: "db"}[unbound]]
    survivors = {(c.src.name, c.dst.name) for c in net.core.connections}
    assert survivors == ({("app", "db")} if unbound == WEB else set()) and revoked == 2 - len(survivors)
    assert net.disagreements() == []
    syn = segment(WEB, DB, 40000, 5432, flags=ACK)
    assert net.trace(1, 1, syn) == ("controller", 1)  # nothing left on the switches for it
    if unbound == WEB:
        assert forwards(net, *PING_D)  # app's ping is untouched
        # web, at the port it was bound at, is now judged by the new entry
        sent = net.send(1, 1, segment(WEB, DB, 40001, 5432))
        assert not [m for m in sent if isinstance(m, PacketOut)]
        assert events(net, "deny")[-1]["problem"] == problem
    else:
        net.send(1, 1, syn)
        assert events(net, "deny")[-1]["reason"] == f"destination MAC {DB} is not a directory host"
        assert net.trace(1, 1, syn) == ("drop", 1)


def test_a_reload_that_changes_nothing_keeps_every_binding_and_connection():
    net = Net()
    net.announce()
    open_connection(net, WEB, DB, 40000, 5432)
    messages, revoked = net.core.reload(directory(DIRECTORY), policy(POLICY), net.now)
    net.fabric.apply(messages)
    assert revoked == 0 and len(net.core.connections) == 1
    assert {mac: net.core.bindings.location(mac) for mac in ATTACHED} == ATTACHED
    assert forwards(net, WEB, DB, 40000, 5432) and net.disagreements() == []


# -- found while writing these: segctl bugs, now fixed -----------------------------------------------
def test_the_echo_of_a_reconnecting_switch_s_wipe_never_ends_a_new_connection():
    net = Net()
    net.announce()
    open_connection(net, WEB, DB, 40000, 5432)
    (old,) = net.core.connections
    net.fabric.hold_removed = True  # what the switches send back is still on its way ...
    net.restart()  # ... when the controller restarts and the switches reconnect to it
    # packet-ins the switch sent before it took the wipe arrive before the wipe's echo
    net.announce()
    net.send(1, 1, segment(WEB, DB, 40001, 5432))
    assert forwards(net, WEB, DB, 40001, 5432)
    net.fabric.hold_removed = False
    net.fabric.deliver_removed()
    echo, _ = net.removals[0]
    assert (echo.dpid, echo.cookie, echo.reason) == (1, old.cookie, "delete")
    assert len(net.core.connections) == 1 and forwards(net, WEB, DB, 40001, 5432)


def test_replies_return_to_the_switches_after_their_entries_idled_out():
    net = Net(TWO_PROTOCOLS)
    net.announce()
    open_connection(net, *UDP_C)
    there = segment(*UDP_C)
    net.advance(31, keep=[(*ATTACHED[WEB], there)])  # web streams, db stays silent 31 s
    assert len(net.core.connections) == 1
    back = reply_to(*UDP_C)
    assert net.trace(*ATTACHED[DB], back) == ("controller", 2)
    sent = net.send(*ATTACHED[DB], back)
    assert [(m.dpid, m.port) for m in sent if isinstance(m, PacketOut)]  # this one is carried by hand
    assert forwards(net, *UDP_C)  # ... the next ones go on the switches again
