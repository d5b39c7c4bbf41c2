"""Allowed connections: their identity (a flow key), their path, and the registry of live ones."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import NamedTuple

from .directory import Host
from .packets import IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP
from .topology import Hop, reverse_hops

PROTO_NAMES = {IP_PROTO_TCP: "tcp", IP_PROTO_UDP: "udp", IP_PROTO_ICMP: "icmp"}
# ICMP requests and the reply type that answers each (echo, timestamp, information, mask).
ICMP_REPLY = {8: 0, 13: 14, 15: 16, 17: 18}


class FlowKey(NamedTuple):
    """One direction of a connection. For ICMP, `src_port` is the type and `dst_port` the code."""

    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    proto: int
    src_port: int | None
    dst_port: int | None

    @property
    def proto_name(self) -> str:
        return PROTO_NAMES.get(self.proto, "other")

    @property
    def service_port(self) -> int | None:
        """What policy checks besides the protocol: the destination port (tcp, udp) or the
        type (icmp)."""
        if self.proto == IP_PROTO_ICMP:
            return self.src_port
        return self.dst_port if self.proto in (IP_PROTO_TCP, IP_PROTO_UDP) else None

    def reverse(self) -> FlowKey | None:
        """The key of this connection's replies; None when no reply is expected (ICMP non-requests)."""
        if self.proto == IP_PROTO_ICMP:
            if self.src_port not in ICMP_REPLY:
                return None
            return FlowKey(
                self.dst_mac,
                self.src_mac,
                self.dst_ip,
                self.src_ip,
                self.proto,
                ICMP_REPLY[self.src_port],
                self.dst_port,
            )
        return FlowKey(self.dst_mac, self.src_mac, self.dst_ip, self.src_ip, self.proto, self.dst_port, self.src_port)

    def service(self) -> FlowKey:
        """The key of every connection of this one's service: the client's side left open (its
        port, or an ICMP request's code). The stateful pipeline's unit (segctl.core.pipeline)."""
        if self.proto == IP_PROTO_ICMP:
            return self._replace(dst_port=None)
        return self._replace(src_port=None)

    @property
    def pair(self) -> tuple:
        """What a later fragment of this direction shows: addresses and protocol, no ports."""
        return (self.src_mac, self.dst_mac, self.src_ip, self.dst_ip, self.proto)

    def match_fields(self) -> dict:
        """OXM fields that match exactly this direction (in_port is added per hop)."""
        fields = {
            "eth_src": self.src_mac,
            "eth_dst": self.dst_mac,
            "eth_type": 0x0800,
            "ipv4_src": self.src_ip,
            "ipv4_dst": self.dst_ip,
            "ip_proto": self.proto,
        }
        if self.proto == IP_PROTO_TCP:
            fields.update(tcp_src=self.src_port, tcp_dst=self.dst_port)
        elif self.proto == IP_PROTO_UDP:
            fields.update(udp_src=self.src_port, udp_dst=self.dst_port)
        elif self.proto == IP_PROTO_ICMP:
            fields.update(icmpv4_type=self.src_port, icmpv4_code=self.dst_port)
        return fields

    def describe(self) -> dict:
        return {
            "src_ip": self.src_ip,
            "dst_ip": self.dst_ip,
            "proto": self.proto_name,
            "src_port": self.src_port,
            "dst_port": self.dst_port,
        }


@dataclass(slots=True)
class Connection:
    id: int
    key: FlowKey
    src: Host
    dst: Host
    rule: str | None
    path: list[Hop]
    created: float
    cookie: int = 0
    monitor_only: bool = False
    reply_key: FlowKey | None = field(default=None)
    # On the stateful pipeline: `key` is a service's (FlowKey.service()), and the switches'
    # connection trackers keep its connections.
    stateful: bool = False

    def directions(self) -> list[FlowKey]:
        """The key of each direction: forward, then the replies' (if any)."""
        return [self.key] if self.reply_key is None else [self.key, self.reply_key]

    def hops(self, pair: tuple) -> list[Hop]:
        """The hops of the direction with this address pair (a FlowKey's `pair`)."""
        return self.path if pair == self.key.pair else reverse_hops(self.path)

    @property
    def switches(self) -> list[int]:
        return [hop.dpid for hop in self.path]

    @property
    def guards_its_server(self) -> bool:
        """A TCP connection on the reactive pipeline: at its server's port, an entry drops what
        the server sends it with neither ACK nor RST (on the stateful pipeline, the tracker does)."""
        return self.reply_key is not None and self.key.proto == IP_PROTO_TCP and not self.stateful

    def uses_link(self, a: int, a_port: int, b: int, b_port: int) -> bool:
        for here, there in zip(self.path, self.path[1:]):
            if {(here.dpid, here.out_port), (there.dpid, there.in_port)} == {(a, a_port), (b, b_port)}:
                return True
        return False

    def to_json(self) -> dict:
        view = self.key.describe()
        view.update(
            id=self.id,
            src=self.src.name,
            dst=self.dst.name,
            rule=self.rule,
            switches=self.switches,
            since=self.created,
            monitor_only=self.monitor_only,
            pipeline="stateful" if self.stateful else "reactive",
            cookie=f"{self.cookie:#x}",  # what its entries carry on the switches
        )
        return view


class ConnectionTable:
    """Live connections, found by id, by either direction's key, by host, or by the address
    pair of either direction (for later fragments).

    Memory is per connection and there may be 100,000s of them: the indexes hold only the
    connection's id (the same int object everywhere) and keys it already has. Later fragments
    are rare, so no index serves them: find_pair looks through the connections of the pair's
    less busy host."""

    def __init__(self) -> None:
        self.by_id: dict[int, Connection] = {}
        self.by_key: dict[FlowKey, int] = {}
        self.by_mac: dict[str, set[int]] = {}
        self.services = 0  # how many are a service's on the stateful pipeline
        # Connections that guard their server, by the switch it is attached to: the server-side
        # drops an audit of that switch must find, known without a look at every connection.
        self.by_server_switch: dict[int, set[int]] = {}
        # Switch -> a set that learns the id of each such connection of its servers added from
        # now on (a running audit's: opened after its read was sent, so perhaps not in the
        # switch's answer). Not the wall clock, which may step back.
        self.watchers: dict[int, set[int]] = {}
        # A run's first id is random: a switch's FlowRemoved about an entry of an earlier run
        # then almost never carries the cookie of a connection this run made.
        self._next_id = secrets.randbelow(0xFFFFFFFF) + 1

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self):
        return iter(list(self.by_id.values()))

    def new_id(self) -> int:
        # 32-bit ids in the cookie; skip any still in use after a wrap.
        while True:
            ident = self._next_id
            self._next_id = self._next_id % 0xFFFFFFFF + 1
            if ident not in self.by_id:
                return ident

    def add(self, connection: Connection) -> None:
        ident = connection.id
        self.by_id[ident] = connection
        key, reply_key = connection.key, connection.reply_key
        self.by_key[key] = ident
        if reply_key is not None:
            self.by_key[reply_key] = ident
        by_mac = self.by_mac
        for mac in (key.src_mac, key.dst_mac):
            ids = by_mac.get(mac)
            if ids is None:
                by_mac[mac] = {ident}
            else:
                ids.add(ident)
        self.services += connection.stateful
        if connection.guards_its_server:
            server_switch = connection.path[-1].dpid
            at_server = self.by_server_switch.get(server_switch)
            if at_server is None:
                self.by_server_switch[server_switch] = {ident}
            else:
                at_server.add(ident)
            opened = self.watchers.get(server_switch)
            if opened is not None:
                opened.add(ident)

    def involving(self, mac: str) -> list[Connection]:
        """The connections from or to `mac`, without looking at any other."""
        return [self.by_id[ident] for ident in sorted(self.by_mac.get(mac, ()))]

    def find(self, key: FlowKey) -> Connection | None:
        """The live connection `key` (a packet's) belongs to: the one of exactly that key, else
        the stateful service it is a connection of, in either direction."""
        by_key = self.by_key
        ident = by_key.get(key)
        if ident is None and self.services:
            # A service's key leaves the client's side open: its port (the source going, the
            # destination coming back), or an ICMP message's code.
            ident = by_key.get(key._replace(src_port=None))
            if ident is None:
                ident = by_key.get(key._replace(dst_port=None))
        return self.by_id.get(ident) if ident is not None else None

    def find_exact(self, key: FlowKey) -> Connection | None:
        """The live connection of exactly `key`: never a stateful service, whose connections
        (its client ports) only the switches' trackers know."""
        ident = self.by_key.get(key)
        return self.by_id.get(ident) if ident is not None else None

    def find_pair(self, pair: tuple) -> Connection | None:
        """The live connection (the lowest id if several) one of whose directions has these
        addresses and protocol (a FlowKey's `pair`)."""
        ends = (self.by_mac.get(pair[0], ()), self.by_mac.get(pair[1], ()))
        by_id = self.by_id
        found = [ident for ident in min(ends, key=len) if any(key.pair == pair for key in by_id[ident].directions())]
        return by_id[min(found)] if found else None

    def remove(self, ident: int) -> Connection | None:
        connection = self.by_id.pop(ident, None)
        if connection is not None:
            by_key = self.by_key
            for key in (connection.key, connection.reply_key):
                if key is not None and by_key.get(key) == ident:
                    del by_key[key]
            by_mac = self.by_mac
            for mac in (connection.key.src_mac, connection.key.dst_mac):
                ids = by_mac.get(mac)
                if ids is not None:
                    ids.discard(ident)
                    if not ids:
                        del by_mac[mac]
            self.services -= connection.stateful
            if connection.guards_its_server:
                server_switch = connection.path[-1].dpid
                at_server = self.by_server_switch.get(server_switch)
                if at_server is not None:
                    at_server.discard(ident)
                    if not at_server:
                        del self.by_server_switch[server_switch]
        return connection
