"""The flow planner: which entries, on which switches, make one connection work, and which
entries undo it. Pure functions returning plain descriptions."""

from __future__ import annotations

from collections.abc import Iterable

from .connections import Connection, FlowKey
from .flows import TABLE_PORT, Barrier, FlowAdd, FlowDelete, MeterSet, PacketOut, match_of
from .packets import ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_LLDP, IP_PROTO_ICMP, IP_PROTO_TCP
from .pipeline import (
    CONNECTION,
    DENY,
    ESTABLISHED_REPLY,
    FLOOD,
    FRAGMENTS,
    GUARD,
    IDLE_TIMEOUTS,
    LATER_FRAGMENTS,
    MISS,
    NEITHER_ACK_NOR_RST,
    NOT_A_FRAGMENT,
    OPENING_SEGMENT,
    PUNT,
    PUNT_METERED,
    PUNT_OPENING,
    QUARANTINE,
    SERVER_DROP,
    SERVICE,
    SERVICE_REPLY,
    SERVICE_TRACK,
    Kind,
    connection_cookie,
    connections_cookie,
    cookie_ids,
    host_cookie,
    kind_cookie,
)
from .topology import Hop, reverse_hops

METER_ID_MAX = 0xFFFF0000  # OpenFlow meter ids above are reserved; a port's meter id is its number


def _fields(key: FlowKey) -> dict:
    fields = key.match_fields()
    if key.proto == IP_PROTO_ICMP:
        fields["ip_frag"] = NOT_A_FRAGMENT
    return fields


def _direction(key: FlowKey, hops: list[Hop], cookie: int, idle: int, notify: bool) -> list[FlowAdd]:
    return _along(CONNECTION, hops, _fields(key), cookie, idle, notify)


def _along(band, hops: list[Hop], fields: dict, cookie: int, idle: int, notify: bool = False) -> list[FlowAdd]:
    """One entry of `band` per hop matching `fields` at its in_port, forwarding to its out_port;
    only the first hop's reports its expiry, if `notify`. Listed from the far end back, the
    order they are installed in, so the first packet never outruns its entries."""
    host_id, connection_id = cookie_ids(cookie)
    entries = [
        band.entry(
            hop.dpid,
            match_of(in_port=hop.in_port, **fields),
            (("output", hop.out_port),),
            host_id,
            connection_id,
            idle=idle,
            notify=notify and position == 0,
        )
        for position, hop in enumerate(hops)
    ]
    return entries[::-1]


def plan_connection(connection: Connection) -> list[FlowAdd]:
    """Entries for both directions of an allowed connection along its path. Only the forward
    direction's ingress entry reports its expiry: that ends the connection."""
    if connection.stateful:
        return plan_service(connection)
    idle = IDLE_TIMEOUTS[connection.key.proto_name]
    entries = _direction(connection.key, connection.path, connection.cookie, idle, True)
    if connection.reply_key is not None:
        reply_hops = reverse_hops(connection.path)
        entries += _direction(connection.reply_key, reply_hops, connection.cookie, idle, False)
        server_drop = plan_server_drop(connection)
        if server_drop is not None:
            entries.insert(0, server_drop)
    return entries


def plan_service(connection: Connection) -> list[FlowAdd]:
    """The stateful pipeline's entries for an allowed service (`connection.key` is a service's
    key): on each switch of the path, the client's packets of the service commit their
    connection to the connection tracker and go on; the server's packets from the service's port
    go through the tracker to the reply table, where those of committed connections go on, and
    anything else (a SYN back, a segment of a connection never opened) misses and is dropped.
    The replies' entries come first, then the way there from the far end back."""
    idle = IDLE_TIMEOUTS[connection.key.proto_name]
    host_id, connection_id = cookie_ids(connection.cookie)
    reply_hops = reverse_hops(connection.path)
    reply_fields = _fields(connection.reply_key) if connection.reply_key is not None else None
    entries: list[FlowAdd] = []
    if reply_fields is not None:
        established = dict(reply_fields, ct_state=ESTABLISHED_REPLY)
        entries += _along(SERVICE_REPLY, reply_hops, established, connection.cookie, idle)
        entries += [
            SERVICE_TRACK.entry(
                hop.dpid, match_of(in_port=hop.in_port, **reply_fields), None, host_id, connection_id, idle=idle
            )
            for hop in reversed(reply_hops)
        ]
    return entries + _along(SERVICE, connection.path, _fields(connection.key), connection.cookie, idle, True)


def plan_server_drop(connection: Connection) -> FlowAdd | None:
    """A segment from the server side of a TCP connection with neither ACK nor RST (a SYN,
    say), dropped where the server is attached (nothing from there reaches a later switch). It
    lives as long as the connection: deleted with it, by its cookie. None for other protocols."""
    if not connection.guards_its_server:
        return None  # (on the stateful pipeline, the tracker drops what no reply is)
    server_edge = reverse_hops(connection.path)[0]
    fields = connection.reply_key.match_fields()  # type: ignore[union-attr]  # (guards_its_server: a reply)
    match = match_of(in_port=server_edge.in_port, tcp_flags_nxm=NEITHER_ACK_NOR_RST, **fields)
    return SERVER_DROP.entry(server_edge.dpid, match, (), *cookie_ids(connection.cookie))


def plan_later_fragments(connection: Connection, pair: tuple) -> list[FlowAdd]:
    """Entries for the later fragments of one direction of a connection, which carry no ports:
    its addresses and protocol, fragments after the first only. Planned when the first such
    fragment reaches the controller; the first fragment has ports and takes the exact entries.
    They carry the connection's ids, so they go when it goes. `pair` is a FlowKey's."""
    src_mac, dst_mac, src_ip, dst_ip, proto = pair
    fields = {
        "eth_src": src_mac,
        "eth_dst": dst_mac,
        "eth_type": ETH_TYPE_IPV4,
        "ipv4_src": src_ip,
        "ipv4_dst": dst_ip,
        "ip_proto": proto,
        "ip_frag": LATER_FRAGMENTS,
    }
    idle = IDLE_TIMEOUTS[connection.key.proto_name]
    return _along(FRAGMENTS, connection.hops(pair), fields, connection.cookie, idle)


def first_packet_out(connection: Connection, data: bytes) -> PacketOut:
    """The packet that opened the connection, sent on out of its first switch's exit port; on
    the stateful pipeline, through the switch's table, whose new entry commits its connection
    (a packet the controller sends straight out would leave the tracker without it, and the
    replies to it would find nothing)."""
    hop = connection.path[0]
    return PacketOut(
        dpid=hop.dpid, port=TABLE_PORT if connection.stateful else hop.out_port, data=data, in_port=hop.in_port
    )


def plan_revoke(connection: Connection) -> list:
    """Delete every entry of the connection (of every band) on every switch of its path, then
    confirm: one delete per switch."""
    cookie, mask = connection_cookie(connection.cookie)
    messages: list = [FlowDelete(dpid, cookie, mask) for dpid in connection.switches]
    messages.extend(Barrier(dpid) for dpid in dict.fromkeys(connection.switches))
    return messages


def plan_deny(dpid: int, in_port: int, key: FlowKey) -> FlowAdd:
    """A short exact drop at the ingress, so a denied sender cannot flood the controller."""
    return DENY.entry(dpid, match_of(in_port=in_port, **key.match_fields()))


def plan_guard(dpid: int, in_port: int, mac: str, ip: str | None = None) -> FlowAdd:
    """Drop a sender that failed authentication at its port for a while (IPv4 and ARP alike
    when no IP is given; only that source IP when the MAC itself is legitimate)."""
    fields = {"in_port": in_port, "eth_src": mac}
    if ip is not None:
        fields.update(eth_type=ETH_TYPE_IPV4, ipv4_src=ip)
    return GUARD.entry(dpid, match_of(**fields))


# -- the switch's own entries ------------------------------------------------------------------
def plan_wipe(dpid: int) -> FlowDelete:
    """Delete every entry in every table of the switch, segctl's or anyone's: a switch segctl
    controls holds nothing segctl did not put there."""
    return FlowDelete(dpid, 0, 0)


def plan_switch_base(dpid: int) -> list[FlowAdd]:
    """The base pipeline: everything dropped but ARP, IPv4 and LLDP, which go to the controller."""
    return [MISS.entry(dpid)] + [
        PUNT.entry(dpid, match_of(eth_type=eth_type)) for eth_type in (ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_LLDP)
    ]


def plan_metered_punts(dpid: int, port: int, rate: int, burst: int) -> list:
    """The port's own way to the controller, through a meter (its id is the port's number) that
    drops what exceeds `rate` packets a second after a `burst`. Nothing for a port whose number
    is no meter id."""
    if port > METER_ID_MAX:
        return []
    opening = match_of(in_port=port, eth_type=ETH_TYPE_IPV4, ip_proto=IP_PROTO_TCP, tcp_flags_nxm=OPENING_SEGMENT)
    return [MeterSet(dpid, port, rate=rate, burst=burst), PUNT_OPENING.entry(dpid, opening, meter=port)] + [
        PUNT_METERED.entry(dpid, match_of(in_port=port, eth_type=eth_type), meter=port)
        for eth_type in (ETH_TYPE_ARP, ETH_TYPE_IPV4)
    ]


def plan_flood_drop(dpid: int, in_port: int, hold: int) -> FlowAdd:
    """Drop a flooding port's new traffic for `hold` seconds (its connections' entries are higher)."""
    return FLOOD.entry(dpid, match_of(in_port=in_port), hard=hold)


def plan_clear_kinds(dpid: int, kinds: Iterable[Kind]) -> list[FlowDelete]:
    """Delete every entry of these kinds on the switch."""
    return [FlowDelete(dpid, *kind_cookie(kind)) for kind in kinds]


# -- quarantine --------------------------------------------------------------------------------
def plan_quarantine(dpid: int, host_id: int, mac: str) -> list[FlowAdd]:
    """Drop everything from and to `mac` on the switch, above every other entry."""
    return [
        QUARANTINE.entry(dpid, match_of(eth_src=mac), host_id=host_id),
        QUARANTINE.entry(dpid, match_of(eth_dst=mac), host_id=host_id),
    ]


def plan_release(dpid: int, host_id: int) -> FlowDelete:
    """Delete the host's quarantine drops on the switch."""
    return FlowDelete(dpid, *host_cookie(Kind.QUARANTINE, host_id))


def plan_forget_connections_of(dpid: int, mac: str) -> list[FlowDelete]:
    """Delete every entry of every connection from or to `mac` on the switch (of every
    connection band: directions, server-side drops, later fragments)."""
    cookie, mask = connections_cookie()
    return [
        FlowDelete(dpid, cookie, mask, match_of(eth_src=mac)),
        FlowDelete(dpid, cookie, mask, match_of(eth_dst=mac)),
    ]
