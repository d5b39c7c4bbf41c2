"""The flow planner: which entries, on which switches, make one connection work, and which
entries undo it. Pure functions returning plain descriptions."""

from __future__ import annotations

from .connections import Connection, FlowKey
from .flows import (
    EXACT_MASK,
    PRIORITY_CONNECTION,
    PRIORITY_GUARD,
    Barrier,
    FlowAdd,
    FlowDelete,
    Kind,
    PacketOut,
    make_cookie,
    match_of,
)
from .topology import Hop

IDLE_TIMEOUTS = {"tcp": 60, "udp": 30, "icmp": 10, "other": 30}
DENY_HOLD = 5  # seconds a denied flow is dropped at the ingress before it is asked again
GUARD_HOLD = 10  # seconds an unauthenticated sender is dropped at its port


def _direction(key: FlowKey, hops: list[Hop], cookie: int, idle: int, notify: bool) -> list[FlowAdd]:
    fields = key.match_fields()
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
    # Install from the far end back so the first packet never outruns its entries.
    return entries[::-1]


def reverse_hops(hops: list[Hop]) -> list[Hop]:
    return [Hop(hop.dpid, hop.out_port, hop.in_port) for hop in reversed(hops)]


def plan_connection(connection: Connection) -> list[FlowAdd]:
    """Entries for both directions of an allowed connection along its path. Only the forward
    direction's ingress entry reports its expiry: that ends the connection."""
    idle = IDLE_TIMEOUTS[connection.key.proto_name]
    entries = _direction(connection.key, connection.path, connection.cookie, idle, True)
    if connection.reply_key is not None:
        entries += _direction(connection.reply_key, reverse_hops(connection.path), connection.cookie, idle, False)
    return entries


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
