"""The planner's entries, field by field, and what they do on a fabric.

A connection's entries match exactly one direction at one port of each switch (in_port is what
keeps a packet that enters elsewhere, say from a host sending with another's addresses, from
riding them); they are installed far end first, so the first packet never outruns them; only the
forward ingress entry reports its expiry. The traces run the entries on the fake fabric."""

from segctl.core.connections import Connection, FlowKey
from segctl.core.directory import Host
from segctl.core.flows import Barrier, FlowAdd, FlowDelete, PacketOut, match_of
from segctl.core.pipeline import (
    CONNECTION_MASK,
    PRIORITY_CONNECTION,
    PRIORITY_GUARD,
    PRIORITY_SERVER_SYN,
    PUNT,
    Kind,
    make_cookie,
)
from segctl.core.planner import (
    first_packet_out,
    plan_connection,
    plan_deny,
    plan_guard,
    plan_later_fragments,
    plan_revoke,
)
from segctl.core.topology import Hop

from ..fakenet import APP, DB, LINKS, WEB, icmp, ipv4, packet_fields, tcp
from ..fakeswitch import FakeFabric

WEB_IP, DB_IP = "10.0.0.1", "10.0.0.2"
COOKIE = make_cookie(Kind.CONNECTION, 3, 77)
FRAGMENTS_COOKIE = make_cookie(Kind.FRAGMENTS, 3, 77)  # the same connection's later fragments
# web at 1/1, db at 2/1: leaf 1 -> spine 101 -> leaf 2 (the fake net's fabric).
PATH = [Hop(1, 1, 10), Hop(101, 1, 2), Hop(2, 10, 1)]
OUT, BACK = (("output", 10),), (("output", 1),)
IPV4 = {"eth_type": 0x0800}


def connection(key: FlowKey, path=PATH) -> Connection:
    return Connection(
        id=77,
        key=key,
        src=Host("web", WEB, WEB_IP),
        dst=Host("db", DB, DB_IP),
        rule="r",
        path=list(path),
        created=0.0,
        cookie=COOKIE,
        reply_key=key.reverse(),
    )


def addresses(src_mac, dst_mac, src_ip, dst_ip, proto) -> dict:
    return dict(eth_src=src_mac, eth_dst=dst_mac, ipv4_src=src_ip, ipv4_dst=dst_ip, ip_proto=proto, **IPV4)


def forward(proto) -> dict:
    return addresses(WEB, DB, WEB_IP, DB_IP, proto)


def reply(proto) -> dict:
    return addresses(DB, WEB, DB_IP, WEB_IP, proto)


def conn_entry(dpid, in_port, out_port, idle, fields, notify=False, cookie=COOKIE) -> FlowAdd:
    return FlowAdd(
        dpid=dpid,
        priority=PRIORITY_CONNECTION,
        match=match_of(in_port=in_port, **fields),
        actions=(("output", out_port),),
        cookie=cookie,
        idle_timeout=idle,
        notify_removed=notify,
    )


def fabric_with(entries) -> FakeFabric:
    """The fake net's fabric holding `entries` and, below them, every IPv4 packet to the
    controller (as the base pipeline sends it): a packet no entry takes shows as "controller"."""
    fabric = FakeFabric(LINKS)
    punts = [PUNT.entry(dpid, match_of(**IPV4)) for dpid in (1, 2, 101, 102)]
    fabric.apply(punts + list(entries))
    return fabric


def trace(fabric, dpid, port, data):
    return fabric.trace(dpid, port, packet_fields(data))


def test_a_tcp_connection_is_its_exact_entries_far_end_first_and_a_server_syn_drop():
    key = FlowKey(WEB, DB, WEB_IP, DB_IP, 6, 40000, 5432)
    there = dict(forward(6), tcp_src=40000, tcp_dst=5432)
    back = dict(reply(6), tcp_src=5432, tcp_dst=40000)
    assert plan_connection(connection(key)) == [
        FlowAdd(
            dpid=2,
            priority=PRIORITY_SERVER_SYN,
            match=match_of(in_port=1, tcp_flags_nxm=(0, 0x14), **back),  # neither ACK nor RST
            actions=(),
            cookie=make_cookie(Kind.SERVER_DROP, 3, 77),
        ),
        conn_entry(2, 10, 1, 60, there),
        conn_entry(101, 1, 2, 60, there),
        conn_entry(1, 1, 10, 60, there, notify=True),
        conn_entry(1, 10, 1, 60, back),
        conn_entry(101, 2, 1, 60, back),
        conn_entry(2, 1, 10, 60, back),
    ]


def test_icmp_entries_match_whole_packets_only_and_udp_idles_sooner():
    echo = FlowKey(WEB, DB, WEB_IP, DB_IP, 1, 8, 0)
    one_hop = [Hop(1, 1, 2)]
    there = dict(addresses(WEB, DB, WEB_IP, DB_IP, 1), icmpv4_type=8, icmpv4_code=0, ip_frag=(0, 1))
    back = dict(addresses(DB, WEB, DB_IP, WEB_IP, 1), icmpv4_type=0, icmpv4_code=0, ip_frag=(0, 1))
    assert plan_connection(connection(echo, one_hop)) == [
        conn_entry(1, 1, 2, 10, there, notify=True),
        conn_entry(1, 2, 1, 10, back),
    ]
    redirect = FlowKey(WEB, DB, WEB_IP, DB_IP, 1, 5, 1)  # no reply expected: one direction
    assert plan_connection(connection(redirect, one_hop)) == [
        conn_entry(1, 1, 2, 10, dict(there, icmpv4_type=5, icmpv4_code=1), notify=True)
    ]
    dns = FlowKey(WEB, DB, WEB_IP, DB_IP, 17, 5353, 53)
    assert plan_connection(connection(dns, one_hop)) == [
        conn_entry(1, 1, 2, 30, dict(forward(17), udp_src=5353, udp_dst=53), notify=True),
        conn_entry(1, 2, 1, 30, dict(reply(17), udp_src=53, udp_dst=5353)),
    ]


def test_a_connection_carries_its_own_packets_only_from_its_own_ports():
    key = FlowKey(WEB, DB, WEB_IP, DB_IP, 6, 40000, 5432)
    fabric = fabric_with(plan_connection(connection(key)))
    syn = tcp(WEB, DB, WEB_IP, DB_IP, 40000, 5432)
    answer = tcp(DB, WEB, DB_IP, WEB_IP, 5432, 40000, flags=0x12)
    assert trace(fabric, 1, 1, syn) == ("out", 2, 1)
    assert trace(fabric, 2, 1, answer) == ("out", 1, 1)
    # The same packets entering anywhere else take no entry of the connection.
    assert trace(fabric, 1, 2, syn) == ("controller", 1)  # another host on web's switch
    assert trace(fabric, 2, 2, answer) == ("controller", 2)  # another host on db's switch
    assert trace(fabric, 101, 2, syn) == ("controller", 101)  # the spine, from the wrong side
    # The server opening a connection back along the reply entries is dropped at its port;
    # its RSTs pass.
    assert trace(fabric, 2, 1, tcp(DB, WEB, DB_IP, WEB_IP, 5432, 40000)) == ("drop", 2)
    assert trace(fabric, 2, 1, tcp(DB, WEB, DB_IP, WEB_IP, 5432, 40000, flags=0x04)) == ("out", 1, 1)
    assert trace(fabric, 2, 2, tcp(DB, WEB, DB_IP, WEB_IP, 5432, 40000)) == ("controller", 2)


def test_later_fragments_follow_their_direction_far_end_first():
    key = FlowKey(WEB, DB, WEB_IP, DB_IP, 17, 5353, 53)
    c = connection(key)
    there = dict(forward(17), ip_frag=3)
    back = dict(reply(17), ip_frag=3)
    assert plan_later_fragments(c, key.pair) == [
        conn_entry(2, 10, 1, 30, there, cookie=FRAGMENTS_COOKIE),
        conn_entry(101, 1, 2, 30, there, cookie=FRAGMENTS_COOKIE),
        conn_entry(1, 1, 10, 30, there, cookie=FRAGMENTS_COOKIE),
    ]
    assert plan_later_fragments(c, c.reply_key.pair) == [
        conn_entry(1, 10, 1, 30, back, cookie=FRAGMENTS_COOKIE),
        conn_entry(101, 2, 1, 30, back, cookie=FRAGMENTS_COOKIE),
        conn_entry(2, 1, 10, 30, back, cookie=FRAGMENTS_COOKIE),
    ]
    fabric = fabric_with(plan_later_fragments(c, key.pair))
    later = ipv4(WEB, DB, WEB_IP, DB_IP, 17, b"\0" * 16, flags_fragment=0x0002)  # offset 16 bytes
    assert trace(fabric, 1, 1, later) == ("out", 2, 1)
    assert trace(fabric, 1, 2, later) == ("controller", 1)
    first = ipv4(WEB, DB, WEB_IP, DB_IP, 17, b"\0" * 16, flags_fragment=0x2000)
    assert trace(fabric, 1, 1, first) == ("controller", 1)  # the first fragment has ports: decided


def test_the_first_packet_leaves_the_ingress_switch_on_the_path():
    key = FlowKey(WEB, DB, WEB_IP, DB_IP, 6, 40000, 5432)
    assert first_packet_out(connection(key), b"frame") == PacketOut(dpid=1, port=10, data=b"frame", in_port=1)


def test_a_revocation_deletes_on_every_switch_of_the_path_then_asks_each_to_confirm():
    """One delete per switch takes every entry of the connection, whatever its band."""
    key = FlowKey(WEB, DB, WEB_IP, DB_IP, 6, 40000, 5432)
    assert plan_revoke(connection(key)) == [
        FlowDelete(1, COOKIE, CONNECTION_MASK),
        FlowDelete(101, COOKIE, CONNECTION_MASK),
        FlowDelete(2, COOKIE, CONNECTION_MASK),
        Barrier(1),
        Barrier(101),
        Barrier(2),
    ]


def test_a_denial_drops_that_flow_at_its_ingress_port_only_for_a_while():
    key = FlowKey(WEB, APP, WEB_IP, "10.0.0.3", 6, 40000, 22)
    deny = plan_deny(1, 1, key)
    assert deny == FlowAdd(
        dpid=1,
        priority=PRIORITY_GUARD,
        match=match_of(in_port=1, **key.match_fields()),
        actions=(),
        cookie=make_cookie(Kind.DENY),
        hard_timeout=5,
    )
    fabric = fabric_with([deny])
    syn = tcp(WEB, APP, WEB_IP, "10.0.0.3", 40000, 22)
    assert trace(fabric, 1, 1, syn) == ("drop", 1)
    assert trace(fabric, 1, 2, syn) == ("controller", 1)
    assert trace(fabric, 1, 1, tcp(WEB, APP, WEB_IP, "10.0.0.3", 40000, 23)) == ("controller", 1)


def test_a_guard_drops_a_sender_at_its_port():
    everything = plan_guard(2, 3, APP)
    assert everything == FlowAdd(
        dpid=2,
        priority=PRIORITY_GUARD,
        match=match_of(in_port=3, eth_src=APP),
        actions=(),
        cookie=make_cookie(Kind.GUARD),
        hard_timeout=10,
    )
    # Only that source address: ipv4_src needs eth_type=IPv4 beside it (an OpenFlow prerequisite).
    one_address = plan_guard(2, 3, APP, "10.0.0.9")
    assert one_address == FlowAdd(
        dpid=2,
        priority=PRIORITY_GUARD,
        match=match_of(in_port=3, eth_src=APP, eth_type=0x0800, ipv4_src="10.0.0.9"),
        actions=(),
        cookie=make_cookie(Kind.GUARD),
        hard_timeout=10,
    )
    fabric = fabric_with([one_address])
    assert trace(fabric, 2, 3, icmp(APP, DB, "10.0.0.9", DB_IP, 8)) == ("drop", 2)
    assert trace(fabric, 2, 3, icmp(APP, DB, "10.0.0.3", DB_IP, 8)) == ("controller", 2)
    assert trace(fabric, 2, 2, icmp(APP, DB, "10.0.0.9", DB_IP, 8)) == ("controller", 2)
