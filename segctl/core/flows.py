"""Plain descriptions of what segctl asks of a switch, and the cookie and priority plan.

Nothing here knows OpenFlow's wire format: `segctl.ofmsg` turns these into messages. Match
fields use the OpenFlow 1.3 OXM names (in_port, eth_src, ipv4_dst, tcp_dst, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

# Priority bands, highest first: a quarantine beats everything, spoofing guards and cached
# denials beat allowed connections, and anything not matched falls to the controller or drops.
PRIORITY_QUARANTINE = 40000
PRIORITY_GUARD = 30000
PRIORITY_SERVER_SYN = 20100  # a connection's server side sending a SYN along it: dropped
PRIORITY_CONNECTION = 20000
PRIORITY_FLOOD = 10000  # a flooding port: new traffic dropped, its connections still forwarded
PRIORITY_PUNT_METERED = 1100  # per-port entries to the controller through the port's meter
PRIORITY_PUNT = 1000
PRIORITY_MISS = 0

COOKIE_MAGIC = 0x5E
_MAGIC_SHIFT = 56
_KIND_SHIFT = 52
_HOST_SHIFT = 32
HOST_ID_LIMIT = 1 << 20
CONNECTION_ID_LIMIT = 1 << 32


class Kind(IntEnum):
    """What a flow entry is for; part of its cookie."""

    BASE = 1
    CONNECTION = 2
    DENY = 3
    GUARD = 4
    QUARANTINE = 5


def make_cookie(kind: Kind, host_id: int = 0, connection_id: int = 0) -> int:
    """magic (8 bits) | kind (4) | host id (20) | connection id (32)."""
    return (
        (COOKIE_MAGIC << _MAGIC_SHIFT)
        | (int(kind) << _KIND_SHIFT)
        | ((host_id % HOST_ID_LIMIT) << _HOST_SHIFT)
        | (connection_id % CONNECTION_ID_LIMIT)
    )


def parse_cookie(cookie: int) -> tuple[Kind, int, int] | None:
    """(kind, host id, connection id) of a segctl cookie, None for anyone else's."""
    if cookie >> _MAGIC_SHIFT != COOKIE_MAGIC:
        return None
    try:
        kind = Kind((cookie >> _KIND_SHIFT) & 0xF)
    except ValueError:
        return None
    return kind, (cookie >> _HOST_SHIFT) & (HOST_ID_LIMIT - 1), cookie & (CONNECTION_ID_LIMIT - 1)


OURS_MASK = 0xFF << _MAGIC_SHIFT
KIND_MASK = OURS_MASK | (0xF << _KIND_SHIFT)
HOST_MASK = KIND_MASK | ((HOST_ID_LIMIT - 1) << _HOST_SHIFT)
EXACT_MASK = (1 << 64) - 1


def kind_cookie(kind: Kind) -> tuple[int, int]:
    """(cookie, mask) selecting every entry of one kind."""
    return make_cookie(kind), KIND_MASK


@dataclass(frozen=True)
class FlowAdd:
    """Install an entry. `actions` is a tuple of ("output", port) / ("controller",); empty drops."""

    dpid: int
    priority: int
    match: tuple
    actions: tuple
    cookie: int
    idle_timeout: int = 0
    hard_timeout: int = 0
    notify_removed: bool = False
    meter: int | None = None  # pass the entry's packets through this meter first

    def match_dict(self) -> dict:
        return dict(self.match)


@dataclass(frozen=True)
class MeterSet:
    """(Re)create meter `meter_id`: packets beyond `rate` per second (after a `burst`) are
    dropped by the switch."""

    dpid: int
    meter_id: int
    rate: int
    burst: int


@dataclass(frozen=True)
class MetersClear:
    """Delete every meter on the switch."""

    dpid: int


@dataclass(frozen=True)
class FlowDelete:
    """Delete (non-strictly) every entry whose cookie matches under the mask and whose match
    is at least as specific as `match`."""

    dpid: int
    cookie: int
    cookie_mask: int
    match: tuple = ()

    def match_dict(self) -> dict:
        return dict(self.match)


@dataclass(frozen=True)
class PacketOut:
    """Send `data` out of `port` of switch `dpid` (`in_port` is where it came in, if anywhere)."""

    dpid: int
    port: int
    data: bytes = field(repr=False)
    in_port: int | None = None


@dataclass(frozen=True)
class SwitchConfig:
    """How the switch treats IP fragments: matched with their own transport fields (Open
    vSwitch's "nx-match" mode), so a first fragment shows its real ports or ICMP type and a
    later one none. In OpenFlow's "normal" mode a fragment's transport fields read as zero, and a
    first fragment of any ICMP message would match an echo reply's entry (type 0, code 0)."""

    dpid: int


@dataclass(frozen=True)
class Barrier:
    """Ask the switch to confirm everything sent before this."""

    dpid: int


def match_of(**fields) -> tuple:
    """A canonical (sorted, hashable) match from OXM field names."""
    return tuple(sorted((name, value) for name, value in fields.items() if value is not None))
