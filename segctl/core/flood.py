"""Flood protection at the edge: each port's packet-in and denial budgets, and the drop entry a
port gets when it spends them too fast."""

from __future__ import annotations

from .ledger import Ledger
from .messages import Message
from .planner import plan_flood_drop


class FloodGuard:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def silenced(self, dpid: int, in_port: int, now: float) -> bool:
        """True while the port's drop entry holds: what it sent before the entry took hold has
        had its say."""
        return now < self.ledger.flooding_until.get((dpid, in_port), 0.0)

    def charge_packet_in(self, dpid: int, in_port: int, now: float) -> list[Message] | None:
        """None when the packet-in is within its port's budget (link ports have none); else the
        messages that cut the port off."""
        ledger = self.ledger
        if ledger.limiter.allow((dpid, in_port), now) or ledger.topology.is_link_port(dpid, in_port):
            return None
        return self.flooding(dpid, in_port, now, f"more than {ledger.protection.packet_in_rate:g} packet-ins/s")

    def charge_denial(self, dpid: int, in_port: int, now: float) -> list[Message]:
        """Count one denial against the port; past its budget, the port is flooding."""
        if self.ledger.denials.allow((dpid, in_port), now):
            return []
        return self.flooding(dpid, in_port, now, f"more than {self.ledger.protection.denied_rate:g} denials/s")

    def flooding(self, dpid: int, in_port: int, now: float, why: str) -> list[Message]:
        """A port past its packet-in or denial budget: drop its new traffic at the switch for a
        while. Its established connections match higher entries and keep flowing."""
        if self.silenced(dpid, in_port, now):
            return []
        ledger = self.ledger
        hold = ledger.protection.flood_hold
        ledger.flooding_until[(dpid, in_port)] = now + hold
        hosts = [b.host.name for b in ledger.bindings.at_port(dpid, in_port)]
        ledger.events.record(
            "flood",
            now,
            dpid=dpid,
            port=in_port,
            hosts=hosts or None,
            reason=f"{why}; new traffic dropped for {hold} s",
        )
        return [plan_flood_drop(dpid, in_port, hold)]

    def forget_switch(self, dpid: int) -> None:
        ledger = self.ledger
        for limiter in (ledger.limiter, ledger.denials):
            limiter.forget_switch(dpid)
        for where in [w for w in ledger.flooding_until if w[0] == dpid]:
            del ledger.flooding_until[where]
