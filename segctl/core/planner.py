"""The flow planner: which entries, on which switches, make one connection work, and which
entries undo it. Pure functions returning plain descriptions."""

from __future__ import annotations

from .connections import Connection, FlowKey
from .flows import (
    EXACT_MASK,
    PRIORITY_CONNECTION,
    PRIORITY_GUARD,
    PRIORITY_SERVER_SYN,
    Barrier,
    FlowAdd,
    FlowDelete,
    Kind,
    PacketOut,
    make_cookie,
    match_of,
)
from .packets import IP_PROTO_ICMP, IP_PROTO_TCP, TCP_ACK, TCP_RST
from .topology import Hop, reverse_hops

IDLE_TIMEOUTS = {"tcp": 60, "udp": 30, "icmp": 10, "other": 30}
# Along a connection the client opened, the server sends only segments with ACK set (SYN+ACK
# first) or a RST. Anything else from it (a SYN, which opens a connection; a bare FIN or a NULL
# segment, which probe the client's ports) is dropped at its own port by an entry above the
# reply entries; its ACKs and RSTs pass in the switch (the client can make the server send
# those at will, and they must not reach the controller at the server's expense).
NEITHER_ACK_NOR_RST = (0, TCP_ACK | TCP_RST)
LATER_FRAGMENTS = (3, 3)  # Open vSwitch's ip_frag: a fragment (1), and not the first (2)
NOT_A_FRAGMENT = (0, 1)  # ICMP entries: even a switch left in "normal" fragment mode, where a
# fragment's type and code read 0, then never mistakes a fragment for an echo reply
DENY_HOLD = 5  # seconds a denied flow is dropped at the ingress before it is asked again
GUARD_HOLD = 10  # seconds an unauthenticated sender is dropped at its port


def _direction(key: FlowKey, hops: list[Hop], cookie: int, idle: int, notify: bool) -> list[FlowAdd]:
    fields = key.match_fields()
    if key.proto == IP_PROTO_ICMP:
        fields["ip_frag"] = NOT_A_FRAGMENT
    return _along(hops, fields, cookie, idle, notify)


def _along(hops: list[Hop], fields: dict, cookie: int, idle: int, notify: bool = False) -> list[FlowAdd]:
    """One entry per hop matching `fields` at its in_port, forwarding to its out_port; only the
    first hop's reports its expiry, if `notify`. Listed from the far end back, the order they
    are installed in, so the first packet never outruns its entries."""
    entries = [
        FlowAdd(
            dpid=hop.dpid,
            priority=PRIORITY_CONNECTION,
            match=match_of(in_port=hop.in_port, **fields),
            actions=(("output", hop.out_port),),
            cookie=cookie,
            idle_timeout=idle,
            notify_removed=notify and position == 0,
        )
        for position, hop in enumerate(hops)
    ]
    return entries[::-1]


def plan_connection(connection: Connection) -> list[FlowAdd]:
    """Entries for both directions of an allowed connection along its path. Only the forward
    direction's ingress entry reports its expiry: that ends the connection."""
    idle = IDLE_TIMEOUTS[connection.key.proto_name]
    entries = _direction(connection.key, connection.path, connection.cookie, idle, True)
    if connection.reply_key is not None:
        reply_hops = reverse_hops(connection.path)
        entries += _direction(connection.reply_key, reply_hops, connection.cookie, idle, False)
        if connection.key.proto == IP_PROTO_TCP:
            entries.insert(0, _server_syn_drop(connection, reply_hops[0]))
    return entries


def _server_syn_drop(connection: Connection, server_edge: Hop) -> FlowAdd:
    """A segment from the server side along the connection with neither ACK nor RST (a SYN,
    say), dropped where the server is attached (nothing from there reaches a later switch). It
    lives as long as the connection: deleted with it, by its cookie."""
    fields = connection.reply_key.match_fields()
    return FlowAdd(
        dpid=server_edge.dpid,
        priority=PRIORITY_SERVER_SYN,
        match=match_of(in_port=server_edge.in_port, tcp_flags_nxm=NEITHER_ACK_NOR_RST, **fields),
        actions=(),
        cookie=connection.cookie,
    )


def plan_later_fragments(connection: Connection, pair: tuple) -> list[FlowAdd]:
    """Entries for the later fragments of one direction of a connection, which carry no ports:
    its addresses and protocol, fragments after the first only. Planned when the first such
    fragment reaches the controller; the first fragment has ports and takes the exact entries.
    They carry the connection's cookie, so they go when it goes. `pair` is a FlowKey's."""
    src_mac, dst_mac, src_ip, dst_ip, proto = pair
    fields = {
        "eth_src": src_mac,
        "eth_dst": dst_mac,
        "eth_type": 0x0800,
        "ipv4_src": src_ip,
        "ipv4_dst": dst_ip,
        "ip_proto": proto,
        "ip_frag": LATER_FRAGMENTS,
    }
    idle = IDLE_TIMEOUTS[connection.key.proto_name]
    return _along(connection.hops(pair), fields, connection.cookie, idle)


def first_packet_out(connection: Connection, data: bytes) -> PacketOut:
    hop = connection.path[0]
    return PacketOut(dpid=hop.dpid, port=hop.out_port, data=data, in_port=hop.in_port)


def plan_revoke(connection: Connection) -> list:
    """Delete every entry of the connection on every switch of its path, then confirm."""
    messages: list = [FlowDelete(dpid, connection.cookie, EXACT_MASK) for dpid in connection.switches]
    messages.extend(Barrier(dpid) for dpid in dict.fromkeys(connection.switches))
    return messages


def plan_deny(dpid: int, in_port: int, key: FlowKey) -> FlowAdd:
    """A short exact drop at the ingress, so a denied sender cannot flood the controller."""
    return FlowAdd(
        dpid=dpid,
        priority=PRIORITY_GUARD,
        match=match_of(in_port=in_port, **key.match_fields()),
        actions=(),
        cookie=make_cookie(Kind.DENY),
        hard_timeout=DENY_HOLD,
    )


def plan_guard(dpid: int, in_port: int, mac: str, ip: str | None = None) -> FlowAdd:
    """Drop a sender that failed authentication at its port for a while (IPv4 and ARP alike
    when no IP is given; only that source IP when the MAC itself is legitimate)."""
    fields = {"in_port": in_port, "eth_src": mac}
    if ip is not None:
        fields.update(eth_type=0x0800, ipv4_src=ip)
    return FlowAdd(
        dpid=dpid,
        priority=PRIORITY_GUARD,
        match=match_of(**fields),
        actions=(),
        cookie=make_cookie(Kind.GUARD),
        hard_timeout=GUARD_HOLD,
    )
