"""The fabric: switches coming and going, their ports, and the links between them, found by
segctl's own signed LLDP probes."""

from __future__ import annotations

from collections.abc import Iterable

from .discovery import LINK_TIMEOUT, LinkDiscovery
from .flood import FloodGuard
from .flows import Barrier, FlowAdd, MetersClear, PacketOut, SwitchConfig
from .ledger import Ledger
from .messages import Message
from .planner import plan_metered_punts, plan_switch_base, plan_wipe
from .quarantine import Quarantines

DISCOVERY_SLICES = 10  # discover() runs this many times per probe interval
METER_HEADROOM = 2  # the switch passes up to twice a port's budget; the controller's bucket decides

Link = tuple[int, int, int, int]


# Seconds after any switch (re)connects during which no sender is bound at a port not known to be
# a link. A link is known once a probe crossed it, a second or so after both its switches are up;
# meanwhile a neighbour still forwarding on the entries of a controller before this one (switches
# fail secure, and reconnect one by one) delivers its hosts' packets on such a port, and binding
# them there would lock them out of their own port and hide the link for good.
EDGE_SETTLE = 2.5
OVS_CONNTRACK_SINCE = (2, 6)  # Open vSwitch tracks connections in both datapaths from 2.6


def tracks_connections(hardware: str, software: str) -> bool:
    """Whether a switch that describes itself so (OpenFlow's switch description: hw_desc,
    sw_desc) runs Open vSwitch's connection tracker, which the stateful pipeline needs."""
    if hardware.strip() != "Open vSwitch":
        return False
    numbers = []
    for part in software.strip().split(".")[:2]:
        if not part.isdigit():
            return False
        numbers.append(int(part))
    return tuple(numbers) >= OVS_CONNTRACK_SINCE


def link_key(a: int, a_port: int, b: int, b_port: int) -> Link:
    """A link the same whichever end it is named from (the order Topology.links() uses)."""
    return (a, a_port, b, b_port) if (a, a_port) < (b, b_port) else (b, b_port, a, a_port)


class Fabric:
    def __init__(self, ledger: Ledger, quarantines: Quarantines, flood: FloodGuard) -> None:
        self.ledger = ledger
        self.quarantines = quarantines
        self.flood = flood
        self.discovery = LinkDiscovery()
        self._link_seen: dict[Link, float] = {}
        self._discovery_tick = 0
        self._last_discover: float | None = None  # the `now` of the last discover()

    # -- switches and ports ------------------------------------------------------------------
    def switch_up(self, dpid: int, ports: Iterable[int], now: float) -> list[Message]:
        """A switch (re)connected: wipe segctl's old entries, install the base pipeline and
        every quarantine, confirm with a barrier, then probe its ports for links."""
        ledger = self.ledger
        messages: list[Message] = self._forget_switch(dpid, now)
        ports = set(ports)
        ledger.topology.add_switch(dpid, ports)
        ledger.settling_until = now + EDGE_SETTLE
        # A former link end that is down now was unplugged: whatever comes next may be a host.
        ledger.former_link_ports -= {(d, p) for d, p in ledger.former_link_ports if d == dpid and p not in ports}
        messages.append(SwitchConfig(dpid))
        messages.append(plan_wipe(dpid))
        messages += plan_switch_base(dpid)
        if ledger.protection.meters:
            messages.append(MetersClear(dpid))
            for port in sorted(ledger.topology.ports[dpid]):
                messages += self._metered_punts(dpid, port)
        messages += self.quarantines.drops(dpid)
        messages.append(Barrier(dpid))
        messages += [self._lldp_probe(dpid, port, now) for port in sorted(ledger.topology.ports[dpid])]
        ledger.events.record("switch-up", now, dpid=dpid, ports=len(ledger.topology.ports[dpid]))
        return messages

    def switch_down(self, dpid: int, now: float) -> list[Message]:
        """The deletes of the connections through the switch, on their other switches."""
        ledger = self.ledger
        messages = self._forget_switch(dpid, now)
        for link in ledger.topology.links():
            if dpid in (link[0], link[2]):
                messages += self.link_down(*link, now)
        ledger.topology.remove_switch(dpid)
        self.flood.forget_switch(dpid)
        ledger.events.record("switch-down", now, dpid=dpid)
        return messages

    def base_entries(self, dpid: int) -> list[FlowAdd]:
        """The entries switch_up installed that the switch must always hold: the audit's
        expectation of the switch's own pipeline."""
        entries = plan_switch_base(dpid)
        if self.ledger.protection.meters:
            for port in sorted(self.ledger.topology.ports.get(dpid, ())):
                entries += [m for m in self._metered_punts(dpid, port) if isinstance(m, FlowAdd)]
        return entries

    def switch_described(self, dpid: int, hardware: str, software: str, now: float) -> list[Message]:
        """The switch's description arrived: whether it tracks connections (pipeline `auto`
        sets up connections through it on the stateful pipeline only then)."""
        ledger = self.ledger
        if dpid not in ledger.topology.ports:
            return []  # (an answer to a connection of the switch now gone)
        conntrack = tracks_connections(hardware, software)
        if conntrack:
            ledger.conntrack_switches.add(dpid)
        ledger.events.record(
            "switch-described", now, dpid=dpid, hardware=hardware, software=software, conntrack=conntrack
        )
        return []

    def _forget_switch(self, dpid: int, now: float) -> list[Message]:
        ledger = self.ledger
        ledger.conntrack_switches.discard(dpid)  # (until it describes itself again)
        messages: list[Message] = []
        for connection in ledger.connections:
            if dpid in connection.switches:
                messages += ledger.revoke(connection, now, "switch reconnected or left", skip=dpid)
        for binding in ledger.bindings.on_switch(dpid):
            ledger.bindings.forget(binding.host.mac)
        return messages

    def _metered_punts(self, dpid: int, port: int) -> list[Message]:
        """The port's own way to the controller, through a meter in the switch: a flooding
        host is capped there, before it costs the controller anything. (The unmetered
        entries below still serve if a switch has no meters.)"""
        p = self.ledger.protection
        return plan_metered_punts(dpid, port, int(p.packet_in_rate * METER_HEADROOM), p.packet_in_burst)

    def port_changed(self, dpid: int, port: int, live: bool, now: float) -> list[Message]:
        """Up: the port's metered punts and a link probe. Down: the revokes of its link's
        connections and of its hosts'."""
        ledger = self.ledger
        ledger.topology.set_port(dpid, port, live)
        if live:
            metered = self._metered_punts(dpid, port) if ledger.protection.meters else []
            return metered + [self._lldp_probe(dpid, port, now)]
        messages: list[Message] = []
        peer = ledger.topology.link_ports.get((dpid, port))
        if peer is not None:
            messages += self.link_down(dpid, port, *peer, now)
        ledger.former_link_ports.discard((dpid, port))  # (unplugged: whatever comes next may be a host)
        for binding in ledger.bindings.at_port(dpid, port):
            messages += ledger.unbind(binding.host.mac, now, f"port {dpid}/{port} went down")
        return messages

    # -- links -------------------------------------------------------------------------------
    def _lldp_probe(self, dpid: int, port: int, now: float) -> PacketOut:
        return PacketOut(dpid, port, self.discovery.probe(dpid, port, now))

    def discover(self, now: float) -> list[Message]:
        """Called DISCOVERY_SLICES times a second: links no probe crossed lately go, and one
        slice of the live ports gets its probe, so each port is probed once a second without
        one burst of probes stalling the packet-ins behind it."""
        messages: list[Message] = []
        for link, seen in list(self._link_seen.items()):
            if now - seen > LINK_TIMEOUT:
                messages += self.link_down(*link, now)
        ledger = self.ledger
        last, self._last_discover = self._last_discover, now
        if last is not None and now < last:
            # The clock was set back: the settling window (a wall-clock time) ends as late after
            # the switch connected as it would have, not an hour later for a clock set back an hour.
            ledger.settling_until -= last - now
        self._discovery_tick = (self._discovery_tick + 1) % DISCOVERY_SLICES
        ports = self.ledger.topology.ports
        for dpid in sorted(ports):
            for port in sorted(ports[dpid]):
                if (dpid + port) % DISCOVERY_SLICES == self._discovery_tick:
                    messages.append(self._lldp_probe(dpid, port, now))
        return messages

    def lldp(self, dpid: int, in_port: int, data: bytes, now: float) -> list[Message]:
        """An LLDP frame came in: a link, if it is one of our probes that crossed a link."""
        ledger = self.ledger
        origin = self.discovery.verify(data, now)
        if isinstance(origin, str):
            ledger.events.record("lldp-rejected", now, dpid=dpid, port=in_port, reason=origin)
            return []
        src, src_port = origin
        if (src, src_port) == (dpid, in_port) or src not in ledger.topology.ports:
            return []
        for where in ((dpid, in_port), (src, src_port)):
            hosts = ledger.bindings.at_port(*where)
            if hosts:
                ledger.events.record(
                    "lldp-rejected",
                    now,
                    dpid=dpid,
                    port=in_port,
                    reason=f"probe from {src}/{src_port} crossed port {where[0]}/{where[1]}, "
                    f"where host {hosts[0].host.name} is bound: relayed by a host?",
                )
                return []
        return self.link_up(src, src_port, dpid, in_port, now)

    def link_up(self, a: int, a_port: int, b: int, b_port: int, now: float) -> list[Message]:
        """Nothing to send (a list, as every handler returns): the topology learns the link."""
        ledger = self.ledger
        self._link_seen[link_key(a, a_port, b, b_port)] = now
        ledger.former_link_ports.difference_update({(a, a_port), (b, b_port)})
        if not ledger.topology.add_link(a, a_port, b, b_port):
            return []
        # (No host is bound at either end: lldp() refuses a probe that crossed a host's port.)
        ledger.events.record("link-up", now, link=f"{a}/{a_port}-{b}/{b_port}", links=len(ledger.topology.links()))
        return []

    def link_down(self, a: int, a_port: int, b: int, b_port: int, now: float) -> list[Message]:
        """The deletes of every connection that crossed the link."""
        ledger = self.ledger
        self._link_seen.pop(link_key(a, a_port, b, b_port), None)
        if not ledger.topology.remove_link(a, a_port, b, b_port):
            return []
        ledger.former_link_ports.update({(a, a_port), (b, b_port)})
        messages: list[Message] = []
        for connection in ledger.connections:
            if connection.uses_link(a, a_port, b, b_port):
                messages += ledger.revoke(connection, now, "link down")
        ledger.events.record("link-down", now, link=f"{a}/{a_port}-{b}/{b_port}", links=len(ledger.topology.links()))
        return messages
