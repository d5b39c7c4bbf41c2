"""Which MAC addresses a host can own.

Quarantine drops every frame from or to one MAC address on every switch. Given a group address
those drops also match frames the fabric needs (the LLDP multicast carries the controller's link
probes: every link would vanish), and given one of the controller's own source addresses they
swallow its probes. Only a host's own unicast address is worth cutting off, and only such an
address may name a host in the directory.
"""

from __future__ import annotations

from collections.abc import Mapping

ALL_ZERO_MAC = "00:00:00:00:00:00"
# The controller's own source addresses (locally administered), so that a probe that leaks onto
# a not-yet-discovered fabric port is recognised and never mistaken for a host.
LOCATOR_MAC = "0e:5e:c0:00:00:01"
LLDP_PROBE_MAC = "0e:5e:c7:00:00:01"
CONTROLLER_MACS = {
    LOCATOR_MAC: "the controller's ARP requests locating hosts",
    LLDP_PROBE_MAC: "the controller's LLDP probes",
}


class NotAHostMac(ValueError):
    """The address can not be a host's own: multicast, all-zero, or the controller's."""


def is_group_mac(mac: str) -> bool:
    """The I/G bit (the lowest bit of the first octet): multicast, broadcast included."""
    return int(mac[:2], 16) & 1 == 1


def why_not_a_host_mac(mac: str, own: Mapping[str, str] = CONTROLLER_MACS) -> str | None:
    """Why `mac` (normalized: lower case, colons) can not be a host's address, or None if it can.
    `own` maps the controller's own source addresses to what it sends from them."""
    if is_group_mac(mac):
        return f"{mac} is a multicast (group) address"
    if mac == ALL_ZERO_MAC:
        return f"{mac} is the all-zero address"
    if mac in own:
        return f"{mac} is the source address of {own[mac]}"
    return None
