"""The controller's brain: turns network events into decisions and flow plans.

Every method takes `now` and returns the list of plain messages (segctl.core.flows) to send,
in order. Nothing here sends, sleeps or imports an OpenFlow framework.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .bindings import Bindings
from .connections import Connection, ConnectionTable, FlowKey
from .decision import DecisionIndex
from .directory import Directory, Host, normalize_mac
from .discovery import LINK_TIMEOUT, LinkDiscovery
from .events import EventLog
from .flows import Barrier, MetersClear, PacketOut, SwitchConfig
from .macs import ARP_PROBE_MAC, NotAHostMac, why_not_a_host_mac
from .packets import (
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST_MAC,
    ETH_TYPE_LLDP,
    IP_PROTO_TCP,
    IP_PROTO_UDP,
    Frame,
    build_arp,
    is_tcp_reply,
    parse_frame,
    quoted_packet,
    strays_from_server,
)
from .pipeline import Kind, make_cookie, parse_cookie
from .planner import (
    first_packet_out,
    plan_clear_kinds,
    plan_connection,
    plan_deny,
    plan_flood_drop,
    plan_forget_connections_of,
    plan_guard,
    plan_later_fragments,
    plan_metered_punts,
    plan_quarantine,
    plan_release,
    plan_revoke,
    plan_switch_base,
    plan_wipe,
)
from .policy import Policy
from .protection import PortRateLimiter, Protection, ScanDetector
from .topology import Topology, reverse_hops

LOG = logging.getLogger("segctl.controller")

PROBE_MAC = ARP_PROBE_MAC  # the source of the controller's ARP probes
PENDING_HOLD = 3.0  # seconds a first packet waits for its destination to be located
PENDING_PER_HOST = 16  # first packets held for one destination; destinations are directory hosts
STRANGERS_LIMIT = 1000  # devices not in the directory remembered for the hosts view, newest kept
PROBE_INTERVAL = 1.0


class UnknownHost(LookupError):
    pass


@dataclass
class QuarantineEntry:
    name: str
    mac: str
    reason: str
    since: float
    by: str = ""

    def to_json(self) -> dict:
        return {"host": self.name, "mac": self.mac, "reason": self.reason, "since": self.since, "by": self.by}


@dataclass
class _Pending:
    dpid: int
    in_port: int
    data: bytes
    expires: float


DISCOVERY_SLICES = 10  # discover() runs this many times per probe interval
METER_HEADROOM = 2  # the switch passes up to twice a port's budget; the controller's bucket decides


class Controller:
    def __init__(self, directory: Directory, policy: Policy, events: EventLog | None = None):
        self.directory = directory
        self.policy = policy
        self.index = DecisionIndex(policy)
        self.events = events or EventLog()
        self.topology = Topology()
        self.bindings = Bindings(self.topology.is_live)
        self.connections = ConnectionTable()
        self.quarantined: dict[str, QuarantineEntry] = {}
        self.strangers: dict[str, dict] = {}
        self._host_ids: dict[str, int] = {}
        self._pending: dict[str, list[_Pending]] = {}
        self._last_probe: dict[str, float] = {}
        self.discovery = LinkDiscovery()
        self._link_seen: dict[tuple[int, int, int, int], float] = {}
        self._flooding_until: dict[tuple[int, int], float] = {}
        self._discovery_tick = 0
        self._protect(policy.protection)
        self.on_quarantine = None  # called after the scan detector quarantined a host
        self.packet_ins = 0

    def _protect(self, protection: Protection) -> None:
        self.protection = protection
        self.limiter = PortRateLimiter(protection.packet_in_rate, protection.packet_in_burst)
        self.denials = PortRateLimiter(protection.denied_rate, protection.denied_burst)
        self.scans = ScanDetector(protection.scan_denied, protection.scan_seconds) if protection.scan_denied else None

    # -- identities --------------------------------------------------------------------------
    def host_id(self, name: str) -> int:
        return self._host_ids.setdefault(name, len(self._host_ids) + 1)

    def is_quarantined(self, host: Host) -> bool:
        return host.name in self.quarantined

    # -- switches, ports and links -----------------------------------------------------------
    def switch_up(self, dpid: int, ports, now: float) -> list:
        """A switch (re)connected: wipe segctl's old entries, install the base pipeline and
        every quarantine, confirm with a barrier."""
        messages: list = self._forget_switch(dpid, now)
        self.topology.add_switch(dpid, ports)
        messages.append(SwitchConfig(dpid))
        messages.append(plan_wipe(dpid))
        messages += plan_switch_base(dpid)
        if self.protection.meters:
            messages.append(MetersClear(dpid))
            for port in sorted(self.topology.ports[dpid]):
                messages += self._metered_punts(dpid, port)
        for entry in self.quarantined.values():
            messages.extend(self._quarantine_drops(dpid, entry))
        messages.append(Barrier(dpid))
        messages += self._probes(dpid, now)
        self.events.record("switch-up", now, dpid=dpid, ports=len(self.topology.ports[dpid]))
        return messages

    def switch_down(self, dpid: int, now: float) -> list:
        messages = self._forget_switch(dpid, now)
        for link in self.topology.links():
            if dpid in (link[0], link[2]):
                messages += self.link_down(*link, now)
        self.topology.remove_switch(dpid)
        for limiter in (self.limiter, self.denials):
            limiter.forget_switch(dpid)
        for where in [w for w in self._flooding_until if w[0] == dpid]:
            del self._flooding_until[where]
        self.events.record("switch-down", now, dpid=dpid)
        return messages

    def _forget_switch(self, dpid: int, now: float) -> list:
        messages: list = []
        for connection in self.connections:
            if dpid in connection.switches:
                messages += self._revoke(connection, now, "switch reconnected or left", skip=dpid)
        for binding in self.bindings.on_switch(dpid):
            self.bindings.forget(binding.host.mac)
        return messages

    def _metered_punts(self, dpid: int, port: int) -> list:
        """The port's own way to the controller, through a meter in the switch: a flooding
        host is capped there, before it costs the controller anything. (The unmetered
        entries below still serve if a switch has no meters.)"""
        p = self.protection
        return plan_metered_punts(dpid, port, int(p.packet_in_rate * METER_HEADROOM), p.packet_in_burst)

    def port_changed(self, dpid: int, port: int, live: bool, now: float) -> list:
        self.topology.set_port(dpid, port, live)
        if live:
            metered = self._metered_punts(dpid, port) if self.protection.meters else []
            return metered + [self._lldp_probe(dpid, port, now)]
        messages: list = []
        peer = self.topology.link_ports.get((dpid, port))
        if peer is not None:
            messages += self.link_down(dpid, port, *peer, now)
        for binding in self.bindings.at_port(dpid, port):
            messages += self._unbind(binding.host.mac, now, f"port {dpid}/{port} went down")
        return messages

    # -- link discovery ----------------------------------------------------------------------
    def _lldp_probe(self, dpid: int, port: int, now: float) -> PacketOut:
        return PacketOut(dpid, port, self.discovery.probe(dpid, port, now))

    def _probes(self, dpid: int, now: float) -> list:
        return [self._lldp_probe(dpid, port, now) for port in sorted(self.topology.ports[dpid])]

    def discover(self, now: float) -> list:
        """Called DISCOVERY_SLICES times a second: links no probe crossed lately go, and one
        slice of the live ports gets its probe, so each port is probed once a second without
        one burst of probes stalling the packet-ins behind it."""
        messages: list = []
        for link, seen in list(self._link_seen.items()):
            if now - seen > LINK_TIMEOUT:
                messages += self.link_down(*link, now)
        self._discovery_tick = (self._discovery_tick + 1) % DISCOVERY_SLICES
        for dpid in sorted(self.topology.ports):
            for port in sorted(self.topology.ports[dpid]):
                if (dpid + port) % DISCOVERY_SLICES == self._discovery_tick:
                    messages.append(self._lldp_probe(dpid, port, now))
        return messages

    def _lldp(self, dpid: int, in_port: int, data: bytes, now: float) -> list:
        origin = self.discovery.verify(data, now)
        if isinstance(origin, str):
            self.events.record("lldp-rejected", now, dpid=dpid, port=in_port, reason=origin)
            return []
        src, src_port = origin
        if (src, src_port) == (dpid, in_port) or src not in self.topology.ports:
            return []
        for where in ((dpid, in_port), (src, src_port)):
            hosts = self.bindings.at_port(*where)
            if hosts:
                self.events.record(
                    "lldp-rejected",
                    now,
                    dpid=dpid,
                    port=in_port,
                    reason=f"probe from {src}/{src_port} crossed port {where[0]}/{where[1]}, "
                    f"where host {hosts[0].host.name} is bound: relayed by a host?",
                )
                return []
        return self.link_up(src, src_port, dpid, in_port, now)

    @staticmethod
    def _link_key(a: int, a_port: int, b: int, b_port: int) -> tuple[int, int, int, int]:
        """A link the same whichever end it is named from (the order Topology.links() uses)."""
        return (a, a_port, b, b_port) if (a, a_port) < (b, b_port) else (b, b_port, a, a_port)

    def link_up(self, a: int, a_port: int, b: int, b_port: int, now: float) -> list:
        self._link_seen[self._link_key(a, a_port, b, b_port)] = now
        if not self.topology.add_link(a, a_port, b, b_port):
            return []
        # (No host is bound at either end: _lldp refuses a probe that crossed a host's port.)
        self.events.record("link-up", now, link=f"{a}/{a_port}-{b}/{b_port}", links=len(self.topology.links()))
        return []

    def link_down(self, a: int, a_port: int, b: int, b_port: int, now: float) -> list:
        self._link_seen.pop(self._link_key(a, a_port, b, b_port), None)
        if not self.topology.remove_link(a, a_port, b, b_port):
            return []
        messages: list = []
        for connection in self.connections:
            if connection.uses_link(a, a_port, b, b_port):
                messages += self._revoke(connection, now, "link down")
        self.events.record("link-down", now, link=f"{a}/{a_port}-{b}/{b_port}", links=len(self.topology.links()))
        return messages

    # -- packets -----------------------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, data: bytes, now: float) -> list:
        self.packet_ins += 1
        if now < self._flooding_until.get((dpid, in_port), 0.0):
            return []  # sent before the port's drop entry took hold: it has had its say
        if not self.limiter.allow((dpid, in_port), now) and not self.topology.is_link_port(dpid, in_port):
            p = self.protection
            return self._flooding(dpid, in_port, now, f"more than {p.packet_in_rate:g} packet-ins/s")
        frame = parse_frame(data)
        if frame is None or frame.eth_src == PROBE_MAC:
            return []
        if frame.eth_type == ETH_TYPE_LLDP:
            return self._lldp(dpid, in_port, data, now)
        if self.topology.is_link_port(dpid, in_port):
            return self._transit(dpid, in_port, frame, data)
        if frame.vlan is not None:
            return []
        if frame.arp is not None:
            return self._arp(dpid, in_port, frame, now)
        if frame.ipv4 is not None:
            return self._ipv4(dpid, in_port, frame, data, now)
        return []

    def _transit(self, dpid: int, in_port: int, frame: Frame, data: bytes) -> list:
        """A packet of a just-allowed connection overtook its entries on a later switch (or a
        later fragment reached a switch before its connection's fragment entries)."""
        ip = frame.ipv4
        if ip is not None and ip.later_fragment:
            return self._later_fragment(dpid, in_port, frame, data)
        key = self._key(frame)
        connection = self.connections.find(key) if key else None
        if connection is None or self._opens_backwards(connection, key, ip):
            return []
        return self._carry(connection, key, dpid, in_port, data)

    def _carry(self, connection: Connection, key: FlowKey, dpid: int, in_port: int, data: bytes) -> list:
        """Send a packet of a live connection on from where it is, along its direction."""
        hops = connection.hops(key.pair)
        reinstall = []
        if (hops[0].dpid, hops[0].in_port) == (dpid, in_port):
            # At the direction's own ingress: its entries are gone (a reply direction idles out
            # alone while the other stays busy). Put the connection back on the switches.
            reinstall = plan_connection(connection)
        return reinstall + self._forward_along(hops, dpid, in_port, data)

    @staticmethod
    def _forward_along(hops, dpid: int, in_port: int, data: bytes) -> list:
        for hop in hops:
            if hop.dpid == dpid and hop.in_port == in_port:
                return [PacketOut(dpid, hop.out_port, data, in_port)]
        return []

    @staticmethod
    def _opens_backwards(connection: Connection, key: FlowKey, ip) -> bool:
        """A segment from the server side of a TCP connection that no reply is: neither ACK nor
        RST (a SYN, which would open a connection back; a bare FIN that probes a port)."""
        return key != connection.key and strays_from_server(ip)

    def _later_fragment(self, dpid: int, in_port: int, frame: Frame, data: bytes) -> list:
        """A fragment after the first has addresses but no ports: it belongs to a connection of
        that address pair and protocol, if one is live; then it, and the fragments after it,
        go the way that connection goes. Otherwise it is dropped: a lone fragment opens nothing."""
        ip = frame.ipv4
        pair = (frame.eth_src, frame.eth_dst, ip.src, ip.dst, ip.proto)
        connection = self.connections.find_pair(pair)
        if connection is None:
            return []
        return plan_later_fragments(connection, pair) + self._forward_along(connection.hops(pair), dpid, in_port, data)

    @staticmethod
    def _key(frame: Frame) -> FlowKey | None:
        ip = frame.ipv4
        if ip is None:
            return None
        if (ip.proto in (IP_PROTO_TCP, IP_PROTO_UDP, 1) and ip.dst_port is None) or ip.header_cut:
            # A truncated header, a later fragment, or a first fragment that splits its TCP/UDP
            # header (no host sends one): nothing exact to match on.
            return None
        return FlowKey(frame.eth_src, frame.eth_dst, ip.src, ip.dst, ip.proto, ip.src_port, ip.dst_port)

    def _authenticate(
        self, dpid: int, in_port: int, mac: str, ip: str | None, now: float, what: str
    ) -> tuple[Host | None, list]:
        admission = self.bindings.admit(self.directory, mac, dpid, in_port, ip, now)
        if not admission.ok:
            if admission.problem == "unknown":
                self.strangers[mac] = {"mac": mac, "ip": ip, "dpid": dpid, "port": in_port, "last_seen": now}
                if len(self.strangers) > STRANGERS_LIMIT:
                    self.strangers.pop(next(iter(self.strangers)))
            self.events.record(
                "deny",
                now,
                src_mac=mac,
                src_ip=ip,
                dpid=dpid,
                port=in_port,
                reason=admission.reason,
                problem=admission.problem,
                packet=what,
            )
            guard_ip = ip if admission.problem == "ip" else None
            over_budget = self._denied_at(dpid, in_port, now)
            if admission.problem == "ip" and what == "arp":
                return None, over_budget  # the host is genuine; just drop the lying ARP
            return None, [plan_guard(dpid, in_port, mac, guard_ip)] + over_budget
        messages: list = []
        if admission.new:
            self.strangers.pop(mac, None)  # unknown once (a directory outage, say), known now
            self.events.record("authenticate", now, host=admission.host.name, mac=mac, dpid=dpid, port=in_port)
            messages += self._replay_pending(mac, now)
        return admission.host, messages

    def _arp(self, dpid: int, in_port: int, frame: Frame, now: float) -> list:
        arp = frame.arp
        if arp.sender_mac != frame.eth_src:
            self.events.record(
                "deny",
                now,
                src_mac=frame.eth_src,
                dpid=dpid,
                port=in_port,
                packet="arp",
                problem="ip",
                reason=f"ARP sender MAC {arp.sender_mac} differs from frame source",
            )
            return []
        src, messages = self._authenticate(dpid, in_port, frame.eth_src, arp.sender_ip, now, "arp")
        if src is None or self.is_quarantined(src):
            return messages
        if arp.op != ARP_REQUEST or arp.target_ip == arp.sender_ip:
            return messages
        target = self.bindings.ip_owner(self.directory, arp.target_ip)
        if target is None or target.mac == src.mac or self.is_quarantined(target):
            return messages
        if self.policy.mode != "monitor" and not self.index.may_talk(src.labels, target.labels):
            return messages
        if self.bindings.location(target.mac) is None:
            # Not attached now: answering would tell the asker that a host exists which may be
            # switched off. Ask for it instead; once it answers, the asker's next ARP is answered.
            return messages + self._probe(target, arp.target_ip, src.mac, arp.sender_ip, now)
        reply = build_arp(
            ARP_REPLY,
            eth_src=target.mac,
            eth_dst=src.mac,
            sender_mac=target.mac,
            sender_ip=arp.target_ip,
            target_mac=src.mac,
            target_ip=arp.sender_ip,
        )
        messages.append(PacketOut(dpid, in_port, reply))
        return messages

    def _ipv4(self, dpid: int, in_port: int, frame: Frame, data: bytes, now: float) -> list:
        ip = frame.ipv4
        src, messages = self._authenticate(dpid, in_port, frame.eth_src, ip.src, now, "ipv4")
        if src is None or self.is_quarantined(src):
            return messages
        if ip.later_fragment:
            return messages + self._later_fragment(dpid, in_port, frame, data)
        key = self._key(frame)
        if key is None:
            return messages
        event = dict(src=src.name, src_mac=key.src_mac, dst_mac=key.dst_mac, **key.describe())
        connection = self.connections.find(key)
        if connection is not None:
            if self._opens_backwards(connection, key, ip):
                event["dst"] = connection.src.name
                reason = f"neither ACK nor RST from the server side of {connection.src.name}'s connection"
                return messages + self._deny(dpid, in_port, key, now, event, reason)
            return messages + self._carry(connection, key, dpid, in_port, data)
        related = self._related_icmp_error(frame, data)
        if related is not None:
            return messages + related
        dst = self.directory.lookup_mac(frame.eth_dst)
        if dst is None or frame.eth_dst == BROADCAST_MAC:
            return messages + self._deny(
                dpid, in_port, key, now, event, f"destination MAC {frame.eth_dst} is not a directory host"
            )
        event["dst"] = dst.name
        if self.is_quarantined(dst):
            return messages + self._deny(dpid, in_port, key, now, event, f"{dst.name} is quarantined")
        bound_ip = dst.ip or (self.bindings.by_mac[dst.mac].ip if dst.mac in self.bindings.by_mac else None)
        if bound_ip is not None and bound_ip != ip.dst:
            return messages + self._deny(dpid, in_port, key, now, event, f"{ip.dst} is not the address of {dst.name}")
        rule = self.index.first_rule(src.labels, dst.labels, key.proto_name, key.service_port)
        monitor_only = False
        if rule is None:
            adopted = self._adopt_reply(dpid, in_port, frame, data, key, src, dst, now)
            if adopted is not None:
                return messages + adopted
            if self.policy.mode != "monitor":
                return messages + self._deny(dpid, in_port, key, now, event, "no rule allows it (default deny)")
            monitor_only = True
            self.events.record(
                "deny",
                now,
                verdict="monitor",
                reason="would be denied in enforce mode (monitor mode forwards it)",
                **event,
            )
        location = self.bindings.location(dst.mac)
        if location is None:
            return messages + self._hold(dst, dpid, in_port, data, src, ip.src, ip.dst, now)
        path = self.topology.path((dpid, in_port), location)
        if path is None:
            self.events.record("deny", now, reason=f"no path to {dst.name}", **event)
            return messages
        connection = self._open(key, src, dst, rule, path, now, monitor_only, event)
        return messages + plan_connection(connection) + [first_packet_out(connection, data)]

    def _open(self, key, src, dst, rule, path, now, monitor_only, event) -> Connection:
        connection = Connection(
            id=self.connections.new_id(),
            key=key,
            src=src,
            dst=dst,
            rule=rule.name if rule else None,
            path=path,
            created=now,
            monitor_only=monitor_only,
            reply_key=key.reverse(),
        )
        connection.cookie = make_cookie(Kind.CONNECTION, self.host_id(src.name), connection.id)
        self.connections.add(connection)
        if rule is not None:
            self.events.record("allow", now, rule=rule.name, switches=connection.switches, **event)
        return connection

    def _related_icmp_error(self, frame: Frame, data: bytes) -> list | None:
        """An ICMP error about a live connection between the same two hosts, sent by one end
        about a packet the other end sent (port unreachable, fragmentation needed, ...), goes
        straight out of the recipient's port and opens nothing. None: not such an error (the
        policy decides it like any other ICMP message)."""
        ip = frame.ipv4
        quoted = quoted_packet(data, ip)
        if quoted is None or (quoted.src, quoted.dst) != (ip.dst, ip.src):
            return None
        about = FlowKey(
            frame.eth_dst, frame.eth_src, quoted.src, quoted.dst, quoted.proto, quoted.src_port, quoted.dst_port
        )
        location = self.bindings.location(frame.eth_dst)
        if self.connections.find(about) is None or location is None:
            return None
        return [PacketOut(location[0], location[1], data)]

    def _adopt_reply(self, dpid, in_port, frame, data, key, server, client, now) -> list | None:
        """A TCP segment that opens nothing (ACK, no SYN) going the way policy forbids, but
        whose reverse policy allows: the reply half of a connection set up before this
        controller started (switches drop our entries when they reconnect). Re-create that
        connection, client to server, instead of cutting it for DENY_HOLD seconds. It opens
        nothing the client was not already allowed."""
        ip = frame.ipv4
        if key.proto != IP_PROTO_TCP or not is_tcp_reply(ip):
            return None
        rule = self.index.first_rule(client.labels, server.labels, "tcp", key.src_port)
        client_at = self.bindings.location(client.mac)
        if rule is None or client_at is None:
            return None
        path = self.topology.path(client_at, (dpid, in_port))
        if path is None:
            return None
        reverse = key.reverse()
        event = dict(src=client.name, dst=server.name, src_mac=client.mac, dst_mac=server.mac, **reverse.describe())
        event["adopted"] = "reply seen first"
        connection = self._open(reverse, client, server, rule, path, now, False, event)
        back = reverse_hops(connection.path)[0]
        return plan_connection(connection) + [PacketOut(dpid, back.out_port, data, in_port)]

    def _deny(self, dpid: int, in_port: int, key: FlowKey, now: float, event: dict, reason: str) -> list:
        self.events.record("deny", now, reason=reason, **event)
        messages = [plan_deny(dpid, in_port, key)] + self._denied_at(dpid, in_port, now)
        if self.scans is not None and self.scans.record_denial(key.src_mac, now):
            p = self.protection
            why = f"scan detector: {p.scan_denied} denied connections within {p.scan_seconds:g} s"
            messages += self.quarantine(key.src_mac, why, now, by="scan-detector")
            if self.on_quarantine is not None:
                self.on_quarantine()
        return messages

    def _denied_at(self, dpid: int, in_port: int, now: float) -> list:
        """Count one denial against the port; past its budget, the port is flooding."""
        if self.denials.allow((dpid, in_port), now):  # (link ports never get here: packet_in sends them to _transit)
            return []
        return self._flooding(dpid, in_port, now, f"more than {self.protection.denied_rate:g} denials/s")

    def _flooding(self, dpid: int, in_port: int, now: float, why: str) -> list:
        """A port past its packet-in or denial budget: drop its new traffic at the switch for a
        while. Its established connections match higher entries and keep flowing."""
        if now < self._flooding_until.get((dpid, in_port), 0.0):
            return []
        hold = self.protection.flood_hold
        self._flooding_until[(dpid, in_port)] = now + hold
        hosts = [b.host.name for b in self.bindings.at_port(dpid, in_port)]
        self.events.record(
            "flood",
            now,
            dpid=dpid,
            port=in_port,
            hosts=hosts or None,
            reason=f"{why}; new traffic dropped for {hold} s",
        )
        return [plan_flood_drop(dpid, in_port, hold)]

    # -- waiting for a destination to show itself ---------------------------------------------
    def _hold(
        self, dst: Host, dpid: int, in_port: int, data: bytes, src: Host, src_ip: str, dst_ip: str, now: float
    ) -> list:
        queue = [p for p in self._pending.get(dst.mac, []) if p.expires > now]
        if len(queue) < PENDING_PER_HOST:
            queue.append(_Pending(dpid, in_port, data, now + PENDING_HOLD))
        self._pending[dst.mac] = queue
        return self._probe(dst, dst_ip, src.mac, src_ip, now)

    def _replay_pending(self, mac: str, now: float) -> list:
        messages: list = []
        for pending in self._pending.pop(mac, []):
            if pending.expires > now:
                messages += self.packet_in(pending.dpid, pending.in_port, pending.data, now)
        return messages

    def _probe(self, target: Host, target_ip: str, asker_mac: str, asker_ip: str, now: float) -> list:
        """ARP for an unlocated host on the edge ports it may be behind, on behalf of the asker,
        so that its answer (to the controller) binds it."""
        if now - self._last_probe.get(target.mac, -PROBE_INTERVAL) < PROBE_INTERVAL:
            return []
        self._last_probe[target.mac] = now
        request = build_arp(
            ARP_REQUEST,
            eth_src=PROBE_MAC,
            eth_dst=BROADCAST_MAC,
            sender_mac=asker_mac,
            sender_ip=asker_ip,
            target_mac="00:00:00:00:00:00",
            target_ip=target_ip,
        )
        # Not where a host is bound, nor where a device the directory does not know was seen:
        # the request names who is asking for whom.
        occupied = {(b.dpid, b.port) for b in self.bindings.by_mac.values()}
        occupied |= {
            (s["dpid"], s["port"]) for s in self.strangers.values() if self.directory.lookup_mac(s["mac"]) is None
        }
        ports = [
            (dpid, port)
            for dpid, port in self.topology.edge_ports()
            if target.may_attach_at(dpid, port) and (dpid, port) not in occupied
        ]
        return [PacketOut(dpid, port, request) for dpid, port in ports]

    # -- flow expiry and revocation ----------------------------------------------------------
    def flow_removed(self, dpid: int, cookie: int, now: float, reason: str = "idle_timeout") -> list:
        """A connection's ingress entry timed out: the connection ended; delete the rest of it.
        `reason` is OpenFlow's: only a timeout ends a connection. A delete is segctl's own, of a
        connection it had already forgotten (possibly in a previous run, whose connection ids
        a new one may reuse), and says nothing about the connections it knows now."""
        if reason not in ("idle_timeout", "hard_timeout"):
            return []
        parsed = parse_cookie(cookie)
        if parsed is None or parsed[0] != Kind.CONNECTION:
            return []
        connection = self.connections.by_id.get(parsed[2])
        if connection is None or connection.cookie != cookie or connection.path[0].dpid != dpid:
            return []
        self.connections.remove(connection.id)
        self.events.record("expire", now, src=connection.src.name, dst=connection.dst.name, **connection.key.describe())
        return plan_revoke(connection)

    def _revoke(self, connection: Connection, now: float, reason: str, skip: int | None = None) -> list:
        """Forget the connection and delete its entries on every switch of its path but `skip`."""
        self._forget_connection(connection, now, reason)
        return [m for m in plan_revoke(connection) if m.dpid != skip]

    def _forget_connection(self, connection: Connection, now: float, reason: str) -> None:
        self.connections.remove(connection.id)
        self.events.record(
            "revoke",
            now,
            src=connection.src.name,
            dst=connection.dst.name,
            rule=connection.rule,
            reason=reason,
            **connection.key.describe(),
        )

    def _unbind(self, mac: str, now: float, reason: str) -> list:
        binding = self.bindings.forget(mac)
        messages: list = []
        for connection in self.connections.involving(mac):
            messages += self._revoke(connection, now, reason)
        if binding is not None:
            self.events.record("unbind", now, host=binding.host.name, reason=reason)
        return messages

    # -- quarantine --------------------------------------------------------------------------
    def _quarantine_drops(self, dpid: int, entry: QuarantineEntry) -> list:
        return plan_quarantine(dpid, self.host_id(entry.name), entry.mac)

    def quarantine_target(self, name_or_mac: str) -> tuple[str, str]:
        """(name, mac) to quarantine: a directory host, an already quarantined name, or any
        MAC address a host can own (a device the directory does not know can be cut off too).
        Raises UnknownHost, or NotAHostMac for a group, all-zero or controller address."""
        host = self.directory.find(name_or_mac)
        if host is not None:
            return host.name, host.mac
        for entry in self.quarantined.values():
            if name_or_mac in (entry.name, entry.mac):
                return entry.name, entry.mac
        mac = normalize_mac(name_or_mac)
        if mac is None:
            raise UnknownHost(f"no host {name_or_mac!r} in the directory, and it is not a MAC address")
        why = why_not_a_host_mac(mac)
        if why is not None:
            raise NotAHostMac(f"{why}: quarantine takes a host's unicast MAC")
        return mac, mac

    def quarantine(self, name_or_mac: str, reason: str, now: float, by: str = "") -> list:
        """Cut a host off on every switch: drops, its entries removed, then barriers."""
        name, mac = self.quarantine_target(name_or_mac)
        entry = QuarantineEntry(name, mac, reason, now, by)
        self.quarantined[name] = entry
        self._pending.pop(mac, None)
        messages: list = []
        for dpid in sorted(self.topology.ports):
            messages += self._quarantine_drops(dpid, entry)
        for connection in self.connections.involving(mac):
            # No per-connection deletes: the two wildcard deletes below take every one of them.
            self._forget_connection(connection, now, f"{name} quarantined")
        for dpid in sorted(self.topology.ports):
            messages += plan_forget_connections_of(dpid, mac)
            messages.append(Barrier(dpid))
        self.events.record("quarantine", now, host=name, mac=mac, reason=reason, by=by)
        return messages

    def release(self, name_or_mac: str, now: float, by: str = "") -> list:
        name, mac = self.quarantine_target(name_or_mac)
        # Quarantined under its MAC while unknown, the device may have a directory name by now.
        held = next((n for n, e in self.quarantined.items() if n == name or e.mac == mac), None)
        if held is None:
            raise UnknownHost(f"{name} is not quarantined")
        self.quarantined.pop(held)
        host_id = self.host_id(held)
        messages: list = []
        for dpid in sorted(self.topology.ports):
            messages += [plan_release(dpid, host_id), Barrier(dpid)]
        self.events.record("release", now, host=name, mac=mac, by=by)
        return messages

    def restore_quarantine(self, entries: list[dict]) -> None:
        """Quarantines saved before a restart; applied to each switch as it connects."""
        for item in entries:
            entry = QuarantineEntry(item["host"], item["mac"], item["reason"], item["since"], item["by"])
            self.quarantined[entry.name] = entry

    # -- views -------------------------------------------------------------------------------
    def host_state(self, name: str, mac: str) -> str:
        if name in self.quarantined or any(e.mac == mac for e in self.quarantined.values()):
            return "quarantined"
        return "authenticated" if mac in self.bindings.by_mac else "unknown"

    def host_view(self, host: Host) -> dict:
        binding = self.bindings.by_mac.get(host.mac)
        return {
            "name": host.name,
            "mac": host.mac,
            "ip": host.ip or (binding.ip if binding else None),
            "labels": dict(host.labels),
            "location": {"dpid": binding.dpid, "port": binding.port} if binding else None,
            "state": self.host_state(host.name, host.mac),
            "pin": {"dpid": host.switch, "port": host.port} if host.switch is not None else None,
        }

    def hosts_view(self) -> list[dict]:
        views = [self.host_view(host) for host in self.directory]
        for stranger in self.strangers.values():
            if self.directory.lookup_mac(stranger["mac"]) is not None:
                continue  # named by the directory since: listed above
            views.append(
                {
                    "name": None,
                    "mac": stranger["mac"],
                    "ip": stranger["ip"],
                    "labels": {},
                    "location": {"dpid": stranger["dpid"], "port": stranger["port"]},
                    "state": self.host_state(stranger["mac"], stranger["mac"]),
                    "last_seen": stranger["last_seen"],
                }
            )
        return views

    def find_host_view(self, name_or_mac: str) -> dict | None:
        host = self.directory.find(name_or_mac)
        if host is not None:
            return self.host_view(host)
        mac = normalize_mac(name_or_mac)
        return next((v for v in self.hosts_view() if v["name"] is None and v["mac"] == mac), None)

    def flows_view(self) -> list[dict]:
        return [c.to_json() for c in self.connections]

    def quarantine_view(self) -> list[dict]:
        return [e.to_json() for e in self.quarantined.values()]

    # -- reload ------------------------------------------------------------------------------
    def reload(self, directory: Directory, policy: Policy, now: float) -> tuple[list, int]:
        """Swap in a new directory and policy; revoke every connection they no longer allow.
        Returns (messages, number of connections revoked)."""
        self.directory, self.policy = directory, policy
        self.index = DecisionIndex(policy)
        self._protect(policy.protection)
        before = len(self.connections)
        messages: list = []
        for binding in list(self.bindings.by_mac.values()):
            host = directory.lookup_mac(binding.host.mac)
            if (
                host is None
                or not host.may_attach_at(binding.dpid, binding.port)
                or (host.ip and binding.ip and host.ip != binding.ip)
            ):
                messages += self._unbind(binding.host.mac, now, "directory changed")
            else:
                binding.host = host
        for connection in self.connections:
            src = directory.lookup_mac(connection.key.src_mac)
            dst = directory.lookup_mac(connection.key.dst_mac)
            still = (
                src is not None
                and dst is not None
                and (
                    policy.mode == "monitor"
                    or self.index.first_rule(
                        src.labels, dst.labels, connection.key.proto_name, connection.key.service_port
                    )
                    is not None
                )
            )
            if still and src.mac in self.bindings.by_mac and dst.mac in self.bindings.by_mac:
                connection.src, connection.dst = src, dst
                continue
            messages += self._revoke(connection, now, "policy reload")
        revoked = before - len(self.connections)
        for dpid in sorted(self.topology.ports):
            messages += plan_clear_kinds(dpid, (Kind.DENY, Kind.GUARD, Kind.FLOOD))
        messages += [Barrier(dpid) for dpid in sorted(self.topology.ports)]
        return messages, revoked
