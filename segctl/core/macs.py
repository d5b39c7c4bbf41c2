"""Which MAC addresses a host can own.

Quarantine drops every frame from or to one MAC address on every switch. Given a group address
those drops also match frames the fabric needs (the LLDP multicast carries the controller's link
probes: every link would vanish), and given one of the controller's own source addresses they
swallow its probes. Only a host's own unicast address is worth cutting off.
"""

from __future__ import annotations

from collections.abc import Mapping

ALL_ZERO_MAC = "00:00:00:00:00:00"


class NotAHostMac(ValueError):
    """The address can not be a host's own: multicast, all-zero, or the controller's."""


def is_group_mac(mac: str) -> bool:
    """The I/G bit (the lowest bit of the first octet): multicast, broadcast included."""
    return int(mac[:2], 16) & 1 == 1


def why_not_a_host_mac(mac: str, own: Mapping[str, str]) -> str | None:
    """Why `mac` (normalized: lower case, colons) can not be a host's address, or None if it can.
    `own` maps the controller's own source addresses to what it sends from them."""
    if is_group_mac(mac):
        return f"{mac} is a multicast (group) address: quarantine takes a host's unicast MAC"
    if mac == ALL_ZERO_MAC:
        return f"{mac} is the all-zero address: quarantine takes a host's unicast MAC"
    if mac in own:
        return f"{mac} is the source address of {own[mac]}: quarantine takes a host's unicast MAC"
    return None
