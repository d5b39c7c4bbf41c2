"""The holes an attack run found, closed in the core: each test sends the attacker's packets
through the controller and the fake fabric, and asks where they, and what follows, would go."""

import struct

import pytest

from segctl.core.flows import PacketOut

from ..fakenet import APP, DB, WEB, Net, arp_request, icmp, ipv4, tcp

ACK, FIN_ACK, RST, RST_ACK, SYN_ACK = 0x10, 0x11, 0x04, 0x14, 0x12


def events(net, kind):
    return [e for e in net.core.events.latest(1000) if e["kind"] == kind]


def db_to_web(sport, dport, flags):
    return tcp(DB, WEB, "10.0.0.2", "10.0.0.1", sport, dport, flags=flags)


@pytest.mark.parametrize(
    "flags", [ACK, FIN_ACK, RST, RST_ACK, SYN_ACK], ids=["ack", "fin-ack", "rst", "rst-ack", "syn-ack"]
)
@pytest.mark.parametrize("port", [22, 2222, 8080])
def test_a_forged_reply_never_lets_the_server_open_a_connection_back(flags, port):
    """Policy allows only web -> db tcp/5432. db forges a segment from 5432 to web:port, then
    tries to open a connection from 5432 to that port."""
    net = Net()
    net.announce()
    net.send(2, 1, db_to_web(5432, port, flags))
    syn = db_to_web(5432, port, 0x02)
    assert net.trace(2, 1, syn)[0] != "out"
    if flags in (ACK, FIN_ACK):  # adopted: db's other segments on it are carried in the switch
        assert net.trace(2, 1, syn) == ("drop", 2)
        assert net.trace(2, 1, db_to_web(5432, port, RST)) == ("out", 1, 1)
    # and a SYN that reaches the controller (before any entry is in place) is not sent on
    sent = net.send(2, 1, syn)
    assert not [m for m in sent if isinstance(m, PacketOut) and m.data == syn], "the SYN was sent on"
    assert net.trace(2, 1, syn) == ("drop", 2)


def test_a_syn_from_the_server_side_of_a_real_connection_is_refused_and_logged():
    net = Net()
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    assert net.trace(2, 1, db_to_web(5432, 40000, SYN_ACK)) == ("out", 1, 1)
    syn = db_to_web(5432, 40000, 0x02)
    sent = net.send(2, 1, syn)
    assert not [m for m in sent if isinstance(m, PacketOut) and m.data == syn]
    (deny,) = [e for e in events(net, "deny") if "server side" in e["reason"]]
    assert (deny["src"], deny["dst"], deny["src_port"], deny["dst_port"]) == ("db", "web", 5432, 40000)


def test_only_live_stream_segments_are_adopted():
    """ACK and FIN+ACK may be a live stream's (after a restart); RST ends one, SYN+ACK answers
    a SYN the controller would have seen: neither re-creates a connection."""
    for flags, adopted in ((ACK, True), (FIN_ACK, True), (RST_ACK, False), (RST, False), (SYN_ACK, False)):
        net = Net()
        net.announce()
        net.send(2, 1, db_to_web(5432, 40000, flags))
        assert len(net.core.connections) == (1 if adopted else 0), hex(flags)


def fragments(src, dst, src_ip, dst_ip, proto, first_l4: bytes, size=3000, ident=7):
    """A datagram of `size` payload bytes cut in 1480-byte fragments."""
    payload = first_l4 + b"x" * (size - len(first_l4))
    pieces, offset = [], 0
    while offset < len(payload):
        chunk = payload[offset : offset + 1480]
        more = 0x2000 if offset + 1480 < len(payload) else 0
        frame = ipv4(src, dst, src_ip, dst_ip, proto, chunk, flags_fragment=more | offset // 8)
        frame = frame[:18] + struct.pack("!H", ident) + frame[20:]
        pieces.append(frame)
        offset += 1480
    return pieces


UDP_POLICY = """
rules:
  - {name: web-to-db, from: {role: web}, to: {role: db}, proto: tcp, ports: [5432]}
  - {name: mdns, from: {role: web}, to: {role: db}, proto: udp, ports: [5353]}
  - {name: ping-db, from: any, to: {role: db}, proto: icmp}
"""


def test_later_fragments_of_an_allowed_datagram_follow_it_and_lone_ones_are_dropped():
    net = Net(UDP_POLICY)
    net.announce()
    first, *later = fragments(WEB, DB, "10.0.0.1", "10.0.0.2", 17, struct.pack("!HHHH", 40000, 5353, 3008, 0))
    assert len(later) == 2
    net.send(1, 1, first)  # the first fragment has ports: it opens the connection
    sent = net.send(1, 1, later[0])  # the next reached the controller before its entries existed
    assert [m.data for m in sent if isinstance(m, PacketOut)] == [later[0]]
    assert net.trace(1, 1, later[1]) == ("out", 2, 1)  # ... and the rest never go there
    # the reply direction's fragments too, once the first of them comes
    back_first, *back_later = fragments(DB, WEB, "10.0.0.2", "10.0.0.1", 17, struct.pack("!HHHH", 5353, 40000, 3008, 0))
    assert net.trace(2, 1, back_first) == ("out", 1, 1)
    net.send(2, 1, back_later[0])
    assert net.trace(2, 1, back_later[1]) == ("out", 1, 1)
    # fragments of the same pair under another protocol, or of a pair with no connection: dropped
    tcp_piece = fragments(WEB, DB, "10.0.0.1", "10.0.0.2", 6, b"\0" * 20)[1]
    app_piece = fragments(APP, DB, "10.0.0.3", "10.0.0.2", 17, b"\0" * 8)[1]
    for dpid, port, piece in ((1, 1, tcp_piece), (2, 2, app_piece)):
        sent = net.send(dpid, port, piece)
        assert not [m for m in sent if isinstance(m, PacketOut)] and net.trace(dpid, port, piece)[0] != "out"
    # revoking the connection takes its fragment entries with it
    (connection,) = net.core.connections
    net.fabric.apply(net.core.ledger.revoke(connection, net.now, "test"))
    assert net.trace(1, 1, later[1])[0] == "controller"


def echo(src, dst, src_ip, dst_ip, icmp_type=8):
    return icmp(src, dst, src_ip, dst_ip, icmp_type, 0, b"\0\1\0\1")


def test_an_icmp_rule_without_types_allows_echo_and_never_redirects_or_timestamps():
    net = Net()
    net.announce()
    assert net.trace(2, 2, echo(APP, DB, "10.0.0.3", "10.0.0.2")) == ("controller", 2)
    net.send(2, 2, echo(APP, DB, "10.0.0.3", "10.0.0.2"))
    assert net.trace(2, 2, echo(APP, DB, "10.0.0.3", "10.0.0.2")) == ("out", 2, 1)
    assert net.trace(2, 1, echo(DB, APP, "10.0.0.2", "10.0.0.3", 0)) == ("out", 2, 2)  # the reply
    for icmp_type in (5, 9, 13, 0):  # redirect, router advertisement, timestamp, unsolicited reply
        message = echo(WEB, DB, "10.0.0.1", "10.0.0.2", icmp_type)
        net.send(1, 1, message)
        assert net.trace(1, 1, message)[0] == "drop", icmp_type
    assert not [c for c in net.core.connections if c.key.src_mac == WEB]


def test_icmp_types_named_in_a_rule_are_the_ones_it_allows():
    net = Net(
        """
rules:
  - {name: stamps, from: {role: web}, to: {role: db}, proto: icmp, icmp_types: [timestamp-request, 5]}
"""
    )
    net.announce()
    for icmp_type, allowed in ((13, True), (5, True), (8, False)):
        message = echo(WEB, DB, "10.0.0.1", "10.0.0.2", icmp_type)
        net.send(1, 1, message)
        assert (net.trace(1, 1, message)[0] == "out") == allowed, icmp_type


def port_unreachable(about: bytes) -> bytes:
    """db's ICMP port unreachable about a datagram web sent it (header and 8 bytes quoted)."""
    return icmp(DB, WEB, "10.0.0.2", "10.0.0.1", 3, 3, b"\0" * 4 + about[14:42])


def test_icmp_errors_about_a_live_connection_reach_its_other_end_and_others_do_not():
    net = Net(UDP_POLICY)
    net.announce()
    datagram = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5353, proto=17)
    net.send(1, 1, datagram)
    sent = net.send(2, 1, port_unreachable(datagram))
    assert [(m.dpid, m.port) for m in sent if isinstance(m, PacketOut)] == [(1, 1)]
    # about a datagram web never sent (another port): dropped, not even to web's port
    forged = tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40001, 5353, proto=17)
    sent = net.send(2, 1, port_unreachable(forged))
    assert not [m for m in sent if isinstance(m, PacketOut)]


def test_proxy_arp_answers_only_for_hosts_attached_now():
    net = Net()
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    sent = net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"))  # db has not shown itself
    assert not [m for m in sent if isinstance(m, PacketOut) and (m.dpid, m.port) == (1, 1)]
    assert [m for m in sent if isinstance(m, PacketOut)], "the controller did not look for db"
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))  # db is switched on
    sent = net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"))
    (answer,) = [m for m in sent if isinstance(m, PacketOut) and (m.dpid, m.port) == (1, 1)]
    assert answer.data[6:12] == bytes.fromhex(DB.replace(":", ""))


def test_a_host_unknown_for_a_while_is_looked_for_again_once_the_directory_knows_it():
    """db was a stranger while the directory lacked it (an outage, an edit): once the directory
    has it again, the controller's ARP probe for it still goes to its port."""
    from ..fakenet import DIRECTORY
    from .helpers import directory, policy

    net = Net()
    without_db = "\n".join(line for line in DIRECTORY.splitlines() if "db:" not in line)
    net.fabric.apply(net.core.reload(directory(without_db), net.core.policy, net.now)[0])
    net.send(2, 1, arp_request(DB, "10.0.0.2", "10.0.0.2"))
    assert DB in net.core.strangers
    net.fabric.apply(net.core.reload(directory(DIRECTORY), policy(UDP_POLICY), net.now)[0])
    net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.1"))
    sent = net.send(1, 1, arp_request(WEB, "10.0.0.1", "10.0.0.2"))
    assert (2, 1) in [(m.dpid, m.port) for m in sent if isinstance(m, PacketOut)]


def test_the_server_side_cannot_probe_its_clients_ports_along_an_adopted_connection():
    """db's stray ACK to web:2222 is adopted (a live stream after a restart, perhaps); a bare FIN
    or NULL segment along it would tell listening ports from closed ones by web's answer. Only
    its ACKs and RSTs pass."""
    net = Net()
    net.announce()
    net.send(2, 1, db_to_web(5432, 2222, ACK))
    assert len(net.core.connections) == 1
    for flags in (0x01, 0x00, 0x20, 0x08, 0x02):  # FIN, NULL, URG, PSH, SYN
        assert net.trace(2, 1, db_to_web(5432, 2222, flags)) == ("drop", 2), hex(flags)
    for flags in (ACK, RST, RST_ACK, FIN_ACK):
        assert net.trace(2, 1, db_to_web(5432, 2222, flags)) == ("out", 1, 1), hex(flags)


def test_a_first_fragment_that_cuts_its_tcp_header_short_reaches_nothing():
    """No host splits its TCP header over fragments; one that does would make the controller
    put a connection back on the switches at every packet. It is dropped."""
    net = Net()
    net.announce()
    net.send(1, 1, tcp(WEB, DB, "10.0.0.1", "10.0.0.2", 40000, 5432))
    plans = len([m for m in net.fabric.tables[1].entries])
    tiny = ipv4(WEB, DB, "10.0.0.1", "10.0.0.2", 6, struct.pack("!HHII", 40000, 5432, 1, 1), flags_fragment=0x2000)
    for _ in range(3):
        sent = net.send(1, 1, tiny)
        assert not [m for m in sent if isinstance(m, PacketOut)] and not [m for m in sent if hasattr(m, "match")]
    assert len(net.fabric.tables[1].entries) == plans
