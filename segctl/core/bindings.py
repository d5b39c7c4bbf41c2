"""Host bindings: which authenticated host sits at which switch port, with which IPv4 address.

A binding is only made for a MAC the directory knows, at a place its pin allows, from an IPv4
address bound to it. A MAC already bound at another live port is not moved (that is how a
spoofer would steal a victim's traffic); a move is accepted only when the old port is down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .directory import Directory, Host

NO_IP = "0.0.0.0"


@dataclass
class Binding:
    host: Host
    dpid: int
    port: int
    ip: str | None
    since: float


@dataclass(frozen=True)
class Admission:
    """The answer to "may this frame's sender be who it claims?"; `new` means it was just bound."""

    host: Host | None
    problem: str = ""  # "", or unknown | pin | ip | location
    reason: str = ""
    new: bool = False

    @property
    def ok(self) -> bool:
        return not self.problem


class Bindings:
    def __init__(self, is_live: Callable[[int, int], bool]):
        self._is_live = is_live
        self.by_mac: dict[str, Binding] = {}
        self.by_ip: dict[str, str] = {}

    def admit(self, directory: Directory, mac: str, dpid: int, port: int, ip: str | None, now: float) -> Admission:
        """Authenticate a sender seen at (dpid, port) and bind it there if that is allowed.

        `ip` is the IPv4 source address (or ARP sender address) it used, if any."""
        host = directory.lookup_mac(mac)
        if host is None:
            return Admission(None, "unknown", f"unknown MAC {mac} is not in the directory")
        if not host.may_attach_at(dpid, port):
            pin = f"switch {host.switch}" + (f" port {host.port}" if host.port else "")
            return Admission(host, "pin", f"{host.name} seen at switch {dpid} port {port}, pinned to {pin}")
        if ip == NO_IP:
            ip = None
        if ip is not None:
            bound = host.ip or (self.by_mac[mac].ip if mac in self.by_mac else None)
            if bound is not None and ip != bound:
                return Admission(host, "ip", f"{host.name} sent from IP {ip}, bound to {bound}")
            owner = directory.by_ip.get(ip)
            if owner is not None and owner.mac != mac:
                return Admission(host, "ip", f"{host.name} sent from IP {ip}, which belongs to {owner.name}")
            learned = self.by_ip.get(ip)
            if learned is not None and learned != mac:
                return Admission(host, "ip", f"{host.name} sent from IP {ip}, in use by {learned}")
        current = self.by_mac.get(mac)
        if current is not None and (current.dpid, current.port) != (dpid, port):
            if self._is_live(current.dpid, current.port):
                return Admission(
                    host,
                    "location",
                    f"{host.name} is already bound at switch {current.dpid} "
                    f"port {current.port}; refused at switch {dpid} port {port}",
                )
            self.forget(mac)
            current = None
        if current is None:
            address = ip or host.ip
            self.by_mac[mac] = Binding(host, dpid, port, address, now)
            if address:
                self.by_ip[address] = mac
            return Admission(host, new=True)
        if current.ip is None and ip is not None:
            current.ip = ip
            self.by_ip[ip] = mac
        return Admission(host)

    def forget(self, mac: str) -> Binding | None:
        binding = self.by_mac.pop(mac, None)
        if binding is not None and binding.ip and self.by_ip.get(binding.ip) == mac:
            del self.by_ip[binding.ip]
        return binding

    def at_port(self, dpid: int, port: int) -> list[Binding]:
        return [b for b in self.by_mac.values() if (b.dpid, b.port) == (dpid, port)]

    def on_switch(self, dpid: int) -> list[Binding]:
        return [b for b in self.by_mac.values() if b.dpid == dpid]

    def ip_owner(self, directory: Directory, ip: str) -> Host | None:
        """The host an IPv4 address belongs to: fixed in the directory, or learned."""
        host = directory.by_ip.get(ip)
        if host is not None:
            return host
        mac = self.by_ip.get(ip)
        return self.by_mac[mac].host if mac in self.by_mac else None

    def location(self, mac: str) -> tuple[int, int] | None:
        binding = self.by_mac.get(mac)
        return (binding.dpid, binding.port) if binding else None
