"""The verdict on one IPv4 packet: a pure function of the packet and the ledger.

`decide()` changes nothing; flow setup applies what it returns. `segctl explain` calls the same
function on a ledger of its own (see segctl.core.explain), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .connections import Connection, FlowKey
from .directory import Host
from .ledger import Ledger
from .packets import (
    BROADCAST_MAC,
    IP_PROTO_ICMP,
    IP_PROTO_TCP,
    IP_PROTO_UDP,
    Frame,
    IPv4,
    is_tcp_reply,
    quoted_packet,
    strays_from_server,
)
from .policy import Rule
from .topology import Hop

# ICMP stays per connection: a large ping's first fragment matches no whole-packet entry, and
# echo is rarely a service opened thousands of times a second.
STATEFUL_PROTOCOLS = (IP_PROTO_TCP, IP_PROTO_UDP)
MONITOR_ONLY = "would be denied in enforce mode (monitor mode forwards it)"
ENFORCE, MONITOR = "enforce", "monitor"


@dataclass(slots=True)  # (not frozen: a frozen dataclass is slow to build, and one is built per packet)
class Allow:
    """Open a connection for `key` along `path`. `would_deny`: monitor mode forwards what no
    rule allows, and says so. `adopted`: the packet is the reply half of a connection set up
    before this controller started; `key`, `src` and `dst` are the connection's, not the packet's.
    `enforced`: the destination's mode is enforce (False: monitor, whether or not a rule allows it)."""

    key: FlowKey
    src: Host
    dst: Host
    rule: Rule | None
    path: list[Hop]
    would_deny: str | None = None
    adopted: bool = False
    enforced: bool = True
    stateful: bool = False  # set up on the stateful pipeline: the service's entries, not the connection's


@dataclass(slots=True)
class Deny:
    key: FlowKey
    reason: str
    dst: str | None = None  # the destination's name, when it is known


@dataclass(slots=True)
class Hold:
    """Allowed, but the destination is not located yet: keep the packet and look for it."""

    key: FlowKey
    dst: Host
    would_deny: str | None = None


@dataclass(slots=True)
class Unreachable:
    """Allowed, but no path leads to the destination now: dropped, not denied."""

    key: FlowKey
    dst: Host
    would_deny: str | None = None


@dataclass(slots=True)
class Transit:
    """A packet of a live connection: it goes on along the direction with address pair `pair`
    (a FlowKey's). `key` is None for a later fragment, which has no ports."""

    connection: Connection
    pair: tuple
    key: FlowKey | None = None


@dataclass(slots=True)
class Deliver:
    """An ICMP error about a live connection, straight out of the port of the host it concerns."""

    dpid: int
    port: int


@dataclass(slots=True)
class Ignore:
    """Nothing exact to match on (a truncated header, a lone later fragment): dropped quietly."""


Verdict = Union[Allow, Deny, Hold, Unreachable, Transit, Deliver, Ignore]  # noqa: UP007


def flow_key(frame: Frame) -> FlowKey | None:
    """The exact key of an IPv4 packet's direction, None when it has none."""
    ip = frame.ipv4
    if ip is None:
        return None
    if (ip.proto in (IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_ICMP) and ip.dst_port is None) or ip.header_cut:
        # A truncated header, a later fragment, or a first fragment that splits its TCP/UDP
        # header (no host sends one): nothing exact to match on.
        return None
    return FlowKey(frame.eth_src, frame.eth_dst, ip.src, ip.dst, ip.proto, ip.src_port, ip.dst_port)


def opens_backwards(connection: Connection, key: FlowKey, ip: IPv4) -> bool:
    """A segment from the server side of a TCP connection that no reply is: neither ACK nor
    RST (a SYN, which would open a connection back; a bare FIN that probes a port)."""
    return key.pair != connection.key.pair and strays_from_server(ip)


def decide_transit(ledger: Ledger, frame: Frame) -> Transit | Ignore:
    """A packet that came in over a link (or a later fragment anywhere): only a live
    connection's own packets go on; nothing arriving here opens anything."""
    ip = frame.ipv4
    if ip is None:
        return Ignore()
    if ip.later_fragment:
        pair = (frame.eth_src, frame.eth_dst, ip.src, ip.dst, ip.proto)
        connection = ledger.connections.find_pair(pair)
        return Ignore() if connection is None else Transit(connection, pair)
    key = flow_key(frame)
    connection = ledger.connections.find(key) if key else None
    if key is None or connection is None or opens_backwards(connection, key, ip):
        return Ignore()
    return Transit(connection, key.pair, key)


def decide(
    ledger: Ledger, at: tuple[int, int], frame: Frame, data: bytes, src: Host, detailed: bool = False
) -> Verdict:
    """The verdict on an IPv4 packet from the authenticated host `src` at `at` (dpid, port).
    With `detailed`, a policy denial says which rules exist between the two hosts."""
    ip = frame.ipv4
    if ip is None:
        return Ignore()
    if ip.later_fragment:
        return decide_transit(ledger, frame)
    key = flow_key(frame)
    if key is None:
        return Ignore()
    connection = ledger.connections.find(key)
    if connection is not None:
        if opens_backwards(connection, key, ip):
            reason = f"neither ACK nor RST from the server side of {connection.src.name}'s connection"
            return Deny(key, reason, connection.src.name)
        return Transit(connection, key.pair, key)
    related = _related_icmp_error(ledger, frame, ip, data)
    if related is not None:
        return related
    dst = ledger.directory.lookup_mac(frame.eth_dst)
    if dst is None or frame.eth_dst == BROADCAST_MAC:
        return Deny(key, f"destination MAC {frame.eth_dst} is not a directory host")
    if ledger.is_quarantined(dst):
        return Deny(key, f"{dst.name} is quarantined", dst.name)
    bound_ip = ledger.bound_ip(dst)
    if bound_ip is not None and bound_ip != key.dst_ip:
        return Deny(key, f"{key.dst_ip} is not the address of {dst.name}", dst.name)
    index = ledger.index
    rule = index.first_rule(src.labels, dst.labels, key.proto_name, key.service_port)
    enforced = index.mode_of(dst.labels) == ENFORCE
    would_deny = None
    if rule is None:
        adopted = _adopted_reply(ledger, at, ip, key, src, dst)
        if adopted is not None:
            return adopted
        if enforced:
            reason = "no rule allows it (default deny)"
            if detailed:
                reason = ledger.index.explain(src.labels, dst.labels, key.proto_name, key.service_port).reason
            return Deny(key, reason, dst.name)
        would_deny = MONITOR_ONLY
    location = ledger.bindings.location(dst.mac)
    if location is None:
        return Hold(key, dst, would_deny)
    path = ledger.topology.path(at, location)
    if path is None:
        return Unreachable(key, dst, would_deny)
    stateful = _stateful(ledger, rule, key, path)
    return Allow(key, src, dst, rule, path, would_deny, enforced=enforced, stateful=stateful)


def _stateful(ledger: Ledger, rule: Rule | None, key: FlowKey, path: list[Hop]) -> bool:
    """Whether an allowed connection goes on the stateful pipeline: a rule's service whose
    replies the trackers can tell (not a monitored pass, logged per connection; nor a rule that
    asks for exact entries per connection), along switches that track connections."""
    return (
        rule is not None
        and rule.scope == "service"
        and key.proto in STATEFUL_PROTOCOLS
        and key.reverse() is not None
        and ledger.tracks_connections(path)
    )


def _related_icmp_error(ledger: Ledger, frame: Frame, ip: IPv4, data: bytes) -> Deliver | None:
    """An ICMP error about a live connection between the same two hosts, sent by one end
    about a packet the other end sent (port unreachable, fragmentation needed, ...), goes
    straight out of the recipient's port and opens nothing. None: not such an error (the
    policy decides it like any other ICMP message), or one about a connection of a stateful
    service, which the controller cannot tell from one the client never opened."""
    quoted = quoted_packet(data, ip)
    if quoted is None or (quoted.src, quoted.dst) != (ip.dst, ip.src):
        return None
    about = FlowKey(
        frame.eth_dst, frame.eth_src, quoted.src, quoted.dst, quoted.proto, quoted.src_port, quoted.dst_port
    )
    location = ledger.bindings.location(frame.eth_dst)
    # (exactly: a service's client ports are its switches' trackers', and an error quoting a
    # port no connection uses must not reach the client)
    if ledger.connections.find_exact(about) is None or location is None:
        return None
    return Deliver(*location)


def _adopted_reply(
    ledger: Ledger, at: tuple[int, int], ip: IPv4, key: FlowKey, server: Host, client: Host
) -> Allow | None:
    """A TCP segment that opens nothing (ACK, no SYN) going the way policy forbids, but
    whose reverse policy allows: the reply half of a connection set up before this
    controller started (switches drop our entries when they reconnect). Re-create that
    connection, client to server, instead of cutting it for a while. It opens nothing the
    client was not already allowed."""
    reverse = key.reverse()
    if key.proto != IP_PROTO_TCP or not is_tcp_reply(ip) or reverse is None:
        return None
    rule = ledger.index.first_rule(client.labels, server.labels, "tcp", key.src_port)
    client_at = ledger.bindings.location(client.mac)
    if rule is None or client_at is None:
        return None
    path = ledger.topology.path(client_at, at)
    if path is None:
        return None
    enforced = ledger.index.mode_of(server.labels) == ENFORCE
    stateful = _stateful(ledger, rule, reverse, path)
    return Allow(reverse, client, server, rule, path, adopted=True, enforced=enforced, stateful=stateful)
