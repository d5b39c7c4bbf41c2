"""Quarantine: cut a host off on every switch at once, and let it back."""

from __future__ import annotations

from .directory import normalize_mac
from .edge import Edge
from .flows import Barrier
from .ledger import Ledger, QuarantineEntry
from .macs import NotAHostMac, why_not_a_host_mac
from .messages import Message
from .planner import plan_forget_connections_of, plan_quarantine, plan_release


class UnknownHost(LookupError):
    pass


class Quarantines:
    def __init__(self, ledger: Ledger, edge: Edge) -> None:
        self.ledger = ledger
        self.edge = edge  # first packets held for a host that is then cut off never go

    def drops(self, dpid: int) -> list[Message]:
        """Every quarantine's drop entries for one switch (it just connected)."""
        messages: list[Message] = []
        for entry in self.ledger.quarantined.values():
            messages += self._drops(dpid, entry)
        return messages

    def _drops(self, dpid: int, entry: QuarantineEntry) -> list[Message]:
        return list(plan_quarantine(dpid, self.ledger.host_id(entry.name), entry.mac))

    def target(self, name_or_mac: str) -> tuple[str, str]:
        """(name, mac) to quarantine: a directory host, an already quarantined name, or any
        MAC address a host can own (a device the directory does not know can be cut off too).
        Raises UnknownHost, or NotAHostMac for a group, all-zero or controller address."""
        host = self.ledger.directory.find(name_or_mac)
        if host is not None:
            return host.name, host.mac
        for entry in self.ledger.quarantined.values():
            if name_or_mac in (entry.name, entry.mac):
                return entry.name, entry.mac
        mac = normalize_mac(name_or_mac)
        if mac is None:
            raise UnknownHost(f"no host {name_or_mac!r} in the directory, and it is not a MAC address")
        why = why_not_a_host_mac(mac)
        if why is not None:
            raise NotAHostMac(f"{why}: quarantine takes a host's unicast MAC")
        return mac, mac

    def quarantine(self, name_or_mac: str, reason: str, now: float, by: str = "") -> list[Message]:
        """Cut a host off on every switch: drops, its entries removed, then barriers; the first
        packets held for it are dropped. The caller saves the state before sending."""
        ledger = self.ledger
        name, mac = self.target(name_or_mac)
        self.edge.drop_held(mac)
        entry = QuarantineEntry(name, mac, reason, now, by)
        ledger.quarantined[name] = entry
        messages: list[Message] = []
        for dpid in ledger.switches():
            messages += self._drops(dpid, entry)
        # No per-connection deletes: the two wildcard deletes below take every one of them.
        ledger.forget_connections(ledger.connections.involving(mac), now, f"{name} quarantined")
        for dpid in ledger.switches():
            messages += plan_forget_connections_of(dpid, mac)
            messages.append(Barrier(dpid))
        # (recorded after its revokes, when the switches have been told: see record_later)
        ledger.events.record_later("quarantine", now, [dict(host=name, mac=mac, reason=reason, by=by)])
        return messages

    def release(self, name_or_mac: str, now: float, by: str = "") -> list[Message]:
        """The deletes of the quarantine's drop entries on every switch, then barriers. Raises
        UnknownHost if the host is not quarantined."""
        ledger = self.ledger
        name, mac = self.target(name_or_mac)
        # Quarantined under its MAC while unknown, the device may have a directory name by now.
        held = next((n for n, e in ledger.quarantined.items() if n == name or e.mac == mac), None)
        if held is None:
            raise UnknownHost(f"{name} is not quarantined")
        ledger.quarantined.pop(held)
        host_id = ledger.host_id(held)
        messages: list[Message] = []
        for dpid in ledger.switches():
            messages += [plan_release(dpid, host_id), Barrier(dpid)]
        ledger.events.record("release", now, host=name, mac=mac, by=by)
        return messages

    def restore(self, entries: list[dict]) -> None:
        """Quarantines saved before a restart; applied to each switch as it connects."""
        for item in entries:
            entry = QuarantineEntry(item["host"], item["mac"], item["reason"], item["since"], item["by"])
            self.ledger.quarantined[entry.name] = entry
