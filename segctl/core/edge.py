"""The edge: who a sender is (authentication and binding), ARP, and first packets held while
their destination is located."""

from __future__ import annotations

from dataclasses import dataclass, field

from .directory import Host
from .flood import FloodGuard
from .flows import PacketOut
from .ledger import Ledger
from .macs import LOCATOR_MAC
from .messages import Message
from .packets import ARP_REPLY, ARP_REQUEST, BROADCAST_MAC, Arp, build_arp
from .planner import plan_guard

PENDING_HOLD = 3.0  # seconds a first packet waits for its destination to be located
PENDING_PER_HOST = 16  # first packets held for one destination; destinations are directory hosts
LOCATE_INTERVAL = 1.0  # seconds between two ARP requests segctl sends to locate one host
LINK_END_NOTICE = 30.0  # seconds between two held-at-link-end events of one port
LINK_END_NOTICED_LIMIT = 4096  # ports whose last such event is remembered


@dataclass
class HeldPacket:
    dpid: int
    in_port: int
    data: bytes
    expires: float


@dataclass(slots=True)
class Admitted:
    """The answer of `Edge.admit`: the sender (None: refused), what refusing it takes, and
    whether it was bound just now (its held first packets may go)."""

    host: Host | None
    messages: list[Message] = field(default_factory=list)
    new: bool = False


class Edge:
    def __init__(self, ledger: Ledger, flood: FloodGuard) -> None:
        self.ledger = ledger
        self.flood = flood
        self._held: dict[str, list[HeldPacket]] = {}
        self._last_locate: dict[str, float] = {}
        self._link_end_noticed: dict[tuple[int, int], float] = {}  # (dpid, port) -> last held-at-link-end

    def _held_at_link_end(self, dpid: int, port: int, host: str, mac: str, now: float) -> None:
        """A `held-at-link-end` event, at most once per port per LINK_END_NOTICE seconds."""
        last = self._link_end_noticed.get((dpid, port))
        if last is not None and 0.0 <= now - last < LINK_END_NOTICE:
            return
        if len(self._link_end_noticed) >= LINK_END_NOTICED_LIMIT:
            self._link_end_noticed.clear()
        self._link_end_noticed[(dpid, port)] = now
        self.ledger.events.record(
            "held-at-link-end",
            now,
            host=host,
            mac=mac,
            dpid=dpid,
            port=port,
            reason="the end of a link not seen since; bound here once its link is seen again or the port goes down",
        )

    # -- who is sending ----------------------------------------------------------------------
    def admit(self, dpid: int, in_port: int, mac: str, ip: str | None, now: float, what: str) -> Admitted:
        """Authenticate the sender of a frame at (dpid, in_port) and bind it there, or refuse it
        (an event, and a guard entry that drops it at its port for a while)."""
        ledger = self.ledger
        if now < ledger.settling_until and ledger.directory.lookup_mac(mac) is not None:
            binding = ledger.bindings.by_mac.get(mac)
            if binding is None or (binding.dpid, binding.port) != (dpid, in_port):
                # Not bound here yet, and the port may be a link not found yet (EDGE_SETTLE):
                # dropped, neither bound nor refused. (A stranger is refused as ever.)
                return Admitted(None, [])
        if (dpid, in_port) in ledger.former_link_ports:
            host = ledger.directory.lookup_mac(mac)
            if host is not None:
                # A link's end while its neighbour is away (it lost its controller, went, or has
                # not come back to this controller since a restart): the neighbour's hosts'
                # packets, forwarded on its old entries. Dropped, as above, and said now and then
                # (a host plugged in there while segctl was stopped waits for its port to go down).
                self._held_at_link_end(dpid, in_port, host.name, mac, now)
                return Admitted(None, [])
        admission = ledger.bindings.admit(ledger.directory, mac, dpid, in_port, ip, now)
        if not admission.ok:
            if admission.problem == "unknown":
                ledger.remember_stranger(mac, ip, dpid, in_port, now)
            ledger.events.record(
                "deny",
                now,
                enforced=True,  # identity is enforced whatever the mode
                src_mac=mac,
                src_ip=ip,
                dpid=dpid,
                port=in_port,
                reason=admission.reason,
                problem=admission.problem,
                packet=what,
            )
            over_budget = self.flood.charge_denial(dpid, in_port, now)
            if admission.problem == "ip" and what == "arp":
                return Admitted(None, over_budget)  # the host is genuine; just drop the lying ARP
            guard_ip = ip if admission.problem == "ip" else None
            return Admitted(None, [plan_guard(dpid, in_port, mac, guard_ip)] + over_budget)
        host = admission.host
        if admission.new and host is not None:
            ledger.strangers.pop(mac, None)  # unknown once (a directory outage, say), known now
            ledger.events.record("authenticate", now, host=host.name, mac=mac, dpid=dpid, port=in_port)
        return Admitted(host, [], admission.new)

    # -- ARP ---------------------------------------------------------------------------------
    def arp(self, dpid: int, in_port: int, eth_src: str, arp: Arp, now: float) -> tuple[Admitted, list[Message]]:
        """Authenticate an ARP's sender; answer a request for a host it may reach by proxy
        (segctl answers every ARP; nothing is flooded). Returns the admission and the answer."""
        ledger = self.ledger
        if arp.sender_mac != eth_src:
            ledger.events.record(
                "deny",
                now,
                enforced=True,
                src_mac=eth_src,
                dpid=dpid,
                port=in_port,
                packet="arp",
                problem="ip",
                reason=f"ARP sender MAC {arp.sender_mac} differs from frame source",
            )
            return Admitted(None), []
        admitted = self.admit(dpid, in_port, eth_src, arp.sender_ip, now, "arp")
        src = admitted.host
        if src is None or ledger.is_quarantined(src):
            return admitted, []
        if arp.op != ARP_REQUEST or arp.target_ip == arp.sender_ip:
            return admitted, []
        target = ledger.bindings.ip_owner(ledger.directory, arp.target_ip)
        if target is None or target.mac == src.mac or ledger.is_quarantined(target):
            return admitted, []
        if not self._may_resolve(src, target):
            return admitted, []
        if ledger.bindings.location(target.mac) is None:
            # Not attached now: answering would tell the asker that a host exists which may be
            # switched off. Ask for it instead; once it answers, the asker's next ARP is answered.
            return admitted, self.locate(target, arp.target_ip, src.mac, arp.sender_ip, now)
        reply = build_arp(
            ARP_REPLY,
            eth_src=target.mac,
            eth_dst=src.mac,
            sender_mac=target.mac,
            sender_ip=arp.target_ip,
            target_mac=src.mac,
            target_ip=arp.sender_ip,
        )
        return admitted, [PacketOut(dpid, in_port, reply)]

    def _may_resolve(self, asker: Host, target: Host) -> bool:
        """Whether `asker` learns `target`'s MAC: some rule lets one open a connection to the
        other, or one of them is monitored (then connections to it are forwarded, and it must
        resolve and be resolved by anyone to answer them)."""
        index = self.ledger.index
        return (
            index.may_talk(asker.labels, target.labels)
            or index.mode_of(target.labels) == "monitor"
            or index.mode_of(asker.labels) == "monitor"
        )

    # -- first packets waiting for their destination -----------------------------------------
    def hold(
        self, dst: Host, dpid: int, in_port: int, data: bytes, src: Host, src_ip: str, dst_ip: str, now: float
    ) -> list[Message]:
        """Keep a first packet until `dst` shows itself (or PENDING_HOLD passes), and ask for it."""
        queue = [p for p in self._held.get(dst.mac, []) if p.expires > now]
        if len(queue) < PENDING_PER_HOST:
            queue.append(HeldPacket(dpid, in_port, data, now + PENDING_HOLD))
        self._held[dst.mac] = queue
        return self.locate(dst, dst_ip, src.mac, src_ip, now)

    def release_held(self, mac: str, now: float) -> list[HeldPacket]:
        """The first packets held for `mac`, still fresh, taken out of the queue."""
        return [p for p in self._held.pop(mac, []) if p.expires > now]

    def drop_held(self, mac: str) -> None:
        """Discard the first packets held for `mac` (it was quarantined)."""
        self._held.pop(mac, None)

    def locate(self, target: Host, target_ip: str, asker_mac: str, asker_ip: str, now: float) -> list[Message]:
        """ARP for an unlocated host on the edge ports it may be behind, on behalf of the asker,
        so that its answer (to the controller) binds it."""
        ledger = self.ledger
        if now - self._last_locate.get(target.mac, -LOCATE_INTERVAL) < LOCATE_INTERVAL:
            return []
        self._last_locate[target.mac] = now
        request = build_arp(
            ARP_REQUEST,
            eth_src=LOCATOR_MAC,
            eth_dst=BROADCAST_MAC,
            sender_mac=asker_mac,
            sender_ip=asker_ip,
            target_mac="00:00:00:00:00:00",
            target_ip=target_ip,
        )
        # Not where a host is bound, nor where a device the directory does not know was seen:
        # the request names who is asking for whom.
        occupied = {(b.dpid, b.port) for b in ledger.bindings.by_mac.values()}
        occupied |= {
            (s["dpid"], s["port"]) for s in ledger.strangers.values() if ledger.directory.lookup_mac(s["mac"]) is None
        }
        ports = [
            (dpid, port)
            for dpid, port in ledger.topology.edge_ports()
            if target.may_attach_at(dpid, port) and (dpid, port) not in occupied
        ]
        return [PacketOut(dpid, port, request) for dpid, port in ports]
