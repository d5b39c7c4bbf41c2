"""The controller core's front door: network events in, plain messages (segctl.core.messages)
out. A packet travels one way: parsed here, its sender admitted at the edge, its verdict
decided (a pure function), then flow setup plans and applies it.

Every method takes `now` and returns the messages to send, in order. Nothing here sends,
sleeps or imports an OpenFlow framework. The rooms:
  ledger.py     the shared state          fabric.py     switches, ports, links
  edge.py       authentication, ARP, held first packets
  verdict.py    the pure decision         flowsetup.py  applying it; expiry
  quarantine.py cutting hosts off         flood.py      per-port budgets
  audit.py      the switches' flow tables held against what segctl put there
"""

from __future__ import annotations

from collections.abc import Iterable

from .audit import AUDIT_INTERVAL, Auditor
from .bindings import Bindings
from .connections import ConnectionTable
from .directory import Directory
from .discovery import LinkDiscovery
from .edge import Admitted, Edge
from .events import EventLog
from .fabric import DISCOVERY_SLICES, Fabric
from .flood import FloodGuard
from .flows import Barrier, ObservedEntry
from .flowsetup import FlowSetup
from .ledger import Ledger, QuarantineEntry
from .macs import LOCATOR_MAC
from .messages import Message
from .packets import ETH_TYPE_LLDP, parse_frame
from .pipeline import Kind
from .planner import plan_clear_kinds
from .policy import Policy
from .quarantine import Quarantines, UnknownHost
from .reloading import binding_kept, connection_kept
from .topology import Topology

__all__ = ["Controller", "UnknownHost", "DISCOVERY_SLICES"]


class Controller:
    def __init__(
        self,
        directory: Directory,
        policy: Policy,
        events: EventLog | None = None,
        audit_interval: float = AUDIT_INTERVAL,
    ) -> None:
        """`audit_interval`: seconds between two reads of one switch's flow table (0: never)."""
        self.ledger = ledger = Ledger(directory, policy, events)
        self.flood = FloodGuard(ledger)
        self.edge = Edge(ledger, self.flood)
        self.quarantines = Quarantines(ledger, self.edge)
        self.fabric = Fabric(ledger, self.quarantines, self.flood)
        self.setup = FlowSetup(ledger, self.edge, self.flood, self.quarantines)
        self.auditor = Auditor(ledger, self.quarantines, self.fabric.base_entries, audit_interval)

    # The ledger's parts most callers look at.
    @property
    def directory(self) -> Directory:
        return self.ledger.directory

    @property
    def policy(self) -> Policy:
        return self.ledger.policy

    @property
    def events(self) -> EventLog:
        return self.ledger.events

    @property
    def topology(self) -> Topology:
        return self.ledger.topology

    @property
    def bindings(self) -> Bindings:
        return self.ledger.bindings

    @property
    def connections(self) -> ConnectionTable:
        return self.ledger.connections

    @property
    def quarantined(self) -> dict[str, QuarantineEntry]:
        """Host name (a MAC for a device not in the directory) -> its quarantine."""
        return self.ledger.quarantined

    @property
    def strangers(self) -> dict[str, dict]:
        """MAC -> the last sighting of a device not in the directory (newest kept)."""
        return self.ledger.strangers

    @property
    def packet_ins(self) -> int:
        """Packet-ins handled since the start."""
        return self.ledger.packet_ins

    @property
    def discovery(self) -> LinkDiscovery:
        return self.fabric.discovery

    # -- the fabric --------------------------------------------------------------------------
    def switch_described(self, dpid: int, hardware: str, software: str, now: float) -> list[Message]:
        """The switch's answer to the description request sent when it connected."""
        return self.fabric.switch_described(dpid, hardware, software, now)

    def switch_up(self, dpid: int, ports: Iterable[int], now: float) -> list[Message]:
        """A switch (re)connected: every entry it holds deleted, then its pipeline, every
        quarantine, and link probes."""
        self.auditor.forget_switch(dpid)
        return self.fabric.switch_up(dpid, ports, now)

    def switch_down(self, dpid: int, now: float) -> list[Message]:
        """A switch left: the deletes of the connections through it on their other switches."""
        self.auditor.forget_switch(dpid)
        return self.fabric.switch_down(dpid, now)

    def port_changed(self, dpid: int, port: int, live: bool, now: float) -> list[Message]:
        """A port came up (its punt entries and a link probe) or went down (its link and its
        hosts' connections revoked)."""
        return self.fabric.port_changed(dpid, port, live, now)

    def discover(self, now: float) -> list[Message]:
        """Link probes and link timeouts; called DISCOVERY_SLICES times a second."""
        return self.fabric.discover(now)

    def link_up(self, a: int, a_port: int, b: int, b_port: int, now: float) -> list[Message]:
        """A link seen (or seen again): nothing to send, the topology learns it."""
        return self.fabric.link_up(a, a_port, b, b_port, now)

    def link_down(self, a: int, a_port: int, b: int, b_port: int, now: float) -> list[Message]:
        """A link gone: the deletes of every connection that crossed it."""
        return self.fabric.link_down(a, a_port, b, b_port, now)

    # -- packets -----------------------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, data: bytes, now: float) -> list[Message]:
        """A packet the switch sent up: parse, admit its sender, decide, apply."""
        ledger = self.ledger
        ledger.packet_ins += 1
        if self.flood.silenced(dpid, in_port, now):
            return []  # sent before the port's drop entry took hold: it has had its say
        cut_off = self.flood.charge_packet_in(dpid, in_port, now)
        if cut_off is not None:
            return cut_off
        frame = parse_frame(data)
        if frame is None or frame.eth_src == LOCATOR_MAC:
            return []
        if frame.eth_type == ETH_TYPE_LLDP:
            return self.fabric.lldp(dpid, in_port, data, now)
        if ledger.topology.is_link_port(dpid, in_port):
            return self.setup.transit(dpid, in_port, frame, data, now)
        if frame.vlan is not None:
            return []
        if frame.arp is not None:
            admitted, answer = self.edge.arp(dpid, in_port, frame.eth_src, frame.arp, now)
            return self._released(admitted, now) + admitted.messages + answer
        if frame.ipv4 is not None:
            admitted = self.edge.admit(dpid, in_port, frame.eth_src, frame.ipv4.src, now, "ipv4")
            messages = self._released(admitted, now) + admitted.messages
            src = admitted.host
            if src is None or ledger.is_quarantined(src):
                return messages
            return messages + self.setup.ipv4(dpid, in_port, frame, data, src, now)
        return []

    def _released(self, admitted: Admitted, now: float) -> list[Message]:
        """A host just bound: the first packets held for it go on (decided afresh, as if they
        had arrived now; they already had their packet-in's say, so no budget is charged)."""
        if not admitted.new or admitted.host is None:
            return []
        messages: list[Message] = []
        for held in self.edge.release_held(admitted.host.mac, now):
            frame = parse_frame(held.data)
            if frame is None or frame.ipv4 is None:  # (only IPv4 packets are held)
                continue
            sender = self.edge.admit(held.dpid, held.in_port, frame.eth_src, frame.ipv4.src, now, "ipv4")
            messages += self._released(sender, now) + sender.messages
            if sender.host is not None and not self.ledger.is_quarantined(sender.host):
                messages += self.setup.ipv4(held.dpid, held.in_port, frame, held.data, sender.host, now)
        return messages

    def flow_removed(
        self, dpid: int, cookie: int, now: float, reason: str = "idle_timeout", counts: tuple[int, int] | None = None
    ) -> list[Message]:
        """An entry left a switch; a connection's ingress entry timing out ends it. `counts`:
        the entry's (packets, bytes), as the switch reported them."""
        return self.setup.flow_removed(dpid, cookie, now, reason, counts)

    # -- the flow-table audit ----------------------------------------------------------------
    def audit_due(self, now: float) -> list[Message]:
        """Called a few times a second: the flow-table read of the switch whose turn it is."""
        return self.auditor.due(now)

    def audit_observe(self, dpid: int, entries: list[ObservedEntry], now: float) -> list[Message]:
        """Part of a switch's flow table as it reported it: what must go goes."""
        return self.auditor.observe(dpid, entries, now)

    def audit_finish(self, dpid: int, now: float) -> list[Message]:
        """The switch reported its whole table: what it lacks comes back."""
        return self.auditor.finish(dpid, now)

    # -- quarantine --------------------------------------------------------------------------
    def quarantine_target(self, name_or_mac: str) -> tuple[str, str]:
        """(name, mac) that quarantine() would cut off. Raises UnknownHost or NotAHostMac."""
        return self.quarantines.target(name_or_mac)

    def quarantine(self, name_or_mac: str, reason: str, now: float, by: str = "") -> list[Message]:
        """Cut a host off on every switch: drops, its entries removed, then barriers."""
        return self.quarantines.quarantine(name_or_mac, reason, now, by)

    def release(self, name_or_mac: str, now: float, by: str = "") -> list[Message]:
        """End a quarantine: its drop entries deleted on every switch, then barriers. Raises
        UnknownHost if the host is not quarantined."""
        return self.quarantines.release(name_or_mac, now, by)

    def restore_quarantine(self, entries: list[dict]) -> None:
        """Quarantines saved by an earlier run (their to_json() form), in force again."""
        self.quarantines.restore(entries)

    def remember_link_ends(self, ends: list[list[int]]) -> None:
        """The link ends an earlier run knew ([dpid, port] each) are former link ends: no
        directory host is bound at one until its link is seen again or its port goes down (or
        is down when its switch connects)."""
        self.ledger.former_link_ports.update((dpid, port) for dpid, port in ends)

    # -- reload ------------------------------------------------------------------------------
    def reload(self, directory: Directory, policy: Policy, now: float) -> tuple[list[Message], int]:
        """Swap in a new directory and policy; revoke every connection they no longer allow.
        Returns (messages, number of connections revoked)."""
        ledger = self.ledger
        ledger.directory = directory
        ledger.use_policy(policy)
        before = len(ledger.connections)
        messages: list[Message] = []
        for binding in list(ledger.bindings.by_mac.values()):
            host = binding_kept(directory, binding)
            if host is None:
                messages += ledger.unbind(binding.host.mac, now, "directory changed")
            else:
                binding.host = host
        gone = []
        for connection in ledger.connections:
            kept = connection_kept(directory, ledger.index, ledger.bindings.by_mac, connection)
            if kept is None:
                gone.append(connection)
                continue
            # (a group moved from monitor to enforce keeps what a rule allows, and only that)
            connection.src, connection.dst, outcome = kept
            connection.rule = outcome.rule.name if outcome.rule else None
            connection.monitor_only = outcome.rule is None
        messages += ledger.revoke_all(gone, now, "policy reload")
        revoked = before - len(ledger.connections)
        for dpid in ledger.switches():  # cached denials and guards: the new policy decides afresh
            messages += plan_clear_kinds(dpid, (Kind.DENY, Kind.GUARD, Kind.FLOOD))
        messages += [Barrier(dpid) for dpid in ledger.switches()]
        return messages, revoked
