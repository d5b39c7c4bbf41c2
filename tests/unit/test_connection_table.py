"""The table of live connections and what a connection costs in memory: ids in the indexes,
shared hops and address strings, no per-instance dict; later fragments found without an index."""

from segctl.core.connections import Connection, ConnectionTable, FlowKey
from segctl.core.directory import Host
from segctl.core.packets import TEXTS_LIMIT, parse_frame
from segctl.core.topology import Hop, Topology, reverse_hops

from ..fakenet import DB, WEB, Net, icmp_echo, tcp
from .helpers import connection_between

WEB_IP, DB_IP = "10.0.0.1", "10.0.0.2"
PATH = [Hop(1, 1, 10), Hop(101, 1, 2), Hop(2, 10, 1)]


def connection(ident, sport, proto=6, src=WEB, dst=DB, src_ip=WEB_IP, dst_ip=DB_IP, reply=True) -> Connection:
    key = FlowKey(src, dst, src_ip, dst_ip, proto, sport, 5432 if proto != 1 else 0)
    return connection_between(Host("a", src, src_ip), Host("b", dst, dst_ip), key, PATH, ident, reply=reply)


def test_a_pair_finds_the_lowest_live_id_of_either_direction_and_nothing_once_they_are_gone():
    table = ConnectionTable()
    tcp_a, tcp_b, udp = connection(7, 40000), connection(5, 40001), connection(3, 40002, proto=17)
    other_ip = connection(2, 40003, src_ip="10.0.0.9")  # same hosts, another address
    for c in (tcp_a, tcp_b, udp, other_ip):
        table.add(c)
    assert table.find_pair(tcp_a.key.pair) is tcp_b
    assert table.find_pair(tcp_a.reply_key.pair) is tcp_b  # the replies' direction too
    assert table.find_pair(udp.key.pair) is udp and table.find_pair(other_ip.key.pair) is other_ip
    table.remove(5)
    assert table.find_pair(tcp_a.reply_key.pair) is tcp_a
    table.remove(7)
    assert table.find_pair(tcp_a.key.pair) is None
    assert table.find_pair((WEB, "02:00:00:00:00:77", WEB_IP, DB_IP, 6)) is None  # an unknown host


def test_a_connection_without_replies_is_found_by_its_own_direction_only():
    table = ConnectionTable()
    echo_reply = connection(4, 0, proto=1, reply=False)
    table.add(echo_reply)
    assert table.find_pair(echo_reply.key.pair) is echo_reply
    assert table.find_pair((DB, WEB, DB_IP, WEB_IP, 1)) is None  # no reply direction to find
    assert table.find(echo_reply.key) is echo_reply and len(table.by_key) == 1


def test_removing_every_connection_empties_every_index():
    table = ConnectionTable()
    for n in range(5):
        table.add(connection(n + 1, 40000 + n))
    table.add(connection(6, 40005, proto=17))  # no server-side drop: UDP
    assert len(table.by_key) == 12 and table.by_mac == {WEB: {1, 2, 3, 4, 5, 6}, DB: {1, 2, 3, 4, 5, 6}}
    assert [c.id for c in table.involving(DB)] == [1, 2, 3, 4, 5, 6]
    assert table.by_server_switch == {2: {1, 2, 3, 4, 5}}  # TCP, by the switch of db (the path's last)
    for n in range(6):
        assert table.remove(n + 1) is not None
    assert table.remove(1) is None
    assert (table.by_id, table.by_key, table.by_mac, table.by_server_switch) == ({}, {}, {}, {})


def test_a_connection_has_no_dict_of_its_own():
    c = connection(1, 40000)
    assert not hasattr(c, "__dict__") and not hasattr(PATH[0], "__dict__")


def test_paths_through_the_same_ports_share_their_hops():
    topology = Topology()
    for dpid, ports in ((1, [1, 2, 10]), (2, [1, 10]), (101, [1, 2])):
        topology.add_switch(dpid, ports)
    topology.add_link(1, 10, 101, 1)
    topology.add_link(2, 10, 101, 2)
    first, again = topology.path((1, 1), (2, 1)), topology.path((1, 1), (2, 1))
    assert first == again and first is not again
    assert all(a is b for a, b in zip(first, again))
    other = topology.path((1, 2), (2, 1))  # another client port: all but the first hop shared
    assert other[0] != first[0] and other[1] is first[1] and other[2] is first[2]
    assert reverse_hops(reverse_hops(first)) == first


def test_parsed_frames_share_the_text_of_their_addresses():
    one = parse_frame(tcp(WEB, DB, WEB_IP, DB_IP, 40000, 5432))
    two = parse_frame(icmp_echo(WEB, DB, WEB_IP, DB_IP))
    assert (one.eth_src, one.ipv4.src, one.ipv4.dst) == (WEB, WEB_IP, DB_IP)
    assert one.eth_src is two.eth_src and one.eth_dst is two.eth_dst
    assert one.ipv4.src is two.ipv4.src and one.ipv4.dst is two.ipv4.dst


def test_the_shared_address_texts_are_bounded(monkeypatch):
    from segctl.core import packets

    monkeypatch.setattr(packets, "_TEXTS", {})
    for n in range(TEXTS_LIMIT + 10):
        packets.ip_text(n.to_bytes(4, "big"))
    assert len(packets._TEXTS) <= TEXTS_LIMIT
    assert packets.ip_text(bytes([10, 0, 0, 1])) == "10.0.0.1"


def test_connections_of_the_controller_share_hops_and_addresses():
    net = Net()
    net.announce()
    for sport in (40000, 40001):
        net.send(1, 1, tcp(WEB, DB, WEB_IP, DB_IP, sport, 5432))
    first, second = sorted(net.core.connections, key=lambda c: c.key.src_port)
    assert first.key.src_mac is second.key.src_mac and first.key.dst_ip is second.key.dst_ip
    assert first.reply_key.dst_mac is first.key.src_mac
    assert all(a is b for a, b in zip(first.path, second.path))
