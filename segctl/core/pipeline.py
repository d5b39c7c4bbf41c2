"""The pipeline on each switch, declared once: its priority bands, and the cookies that tie each
entry to its band.

Every entry segctl installs belongs to one `Band` of `PIPELINE` (highest priority first) and is
made by it (`Band.entry`). The band declares the entry's priority, cookie kind, the match fields
it may use (and the values some of them must have), its action, its timeouts and whether it may
report its removal; `check_entry` refuses anything else with `OutsideBand` (a bug in segctl,
never a condition of the network). `segctl.ofmsg.encode` checks every FlowAdd before encoding
it, the fake switch of the unit tests checks every entry it takes, and README.md's pipeline table
is `pipeline_table_markdown()`, checked by a unit test.

Cookie layout (64 bits)::

    magic 0x5E (8) | kind (4) | host id (20) | connection id (32)

The magic marks segctl's entries. The kind names the band: each band has its own. The kind's top
bit (8, `CONNECTION_SCOPED`) marks the bands whose entries belong to one connection, and make it
work or keep it honest: its direction entries (8), its TCP server-side drop (9) and its later
fragments (10); on the stateful pipeline, a service's entries that commit its connections (11),
send its replies through the connection tracker (12) and forward the replies it knows (13);
14 and 15 are free for more. Kinds 0 to 7 are switch-wide bands (0: punt-opening, the last one free).
The host id is the connection's client, or the quarantined host; the connection id is the
connection's (on the stateful pipeline, a "connection" is an allowed service between two hosts:
every connection of it the switch tracks). Entries of any other band carry 0 in both.

Masks (a FlowDelete takes every entry with ``entry.cookie & mask == cookie & mask``):

- `OURS_MASK`: the magic; every segctl entry (`ours_cookie`: a switch that (re)connects is
  wiped).
- `KIND_MASK`: magic and kind; every entry of one band (`kind_cookie`: a reload clears denials,
  guards and flood drops).
- `HOST_MASK`: magic, kind and host id; a host's entries of one band (`host_cookie`: a release
  deletes its quarantine drops).
- `CONNECTIONS_MASK`: magic and the connection-scoped bit; every entry of every connection
  (`connections_cookie`: a quarantine deletes them with a match on eth_src, then eth_dst).
- `CONNECTION_MASK`: magic, the connection-scoped bit, host id and connection id, but not the
  kind's other bits; every entry of one connection, whatever its band (`connection_cookie`: a
  revocation is one FlowDelete per switch).
- `EXACT_MASK`: one cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from operator import itemgetter

from .flows import FlowAdd
from .packets import ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_LLDP, IP_PROTO_TCP, TCP_ACK, TCP_RST, TCP_SYN

_first = itemgetter(0)
COOKIE_MAGIC = 0x5E
_MAGIC_SHIFT = 56
_KIND_SHIFT = 52
_HOST_SHIFT = 32
HOST_ID_LIMIT = 1 << 20
CONNECTION_ID_LIMIT = 1 << 32
CONNECTION_SCOPED = 0x8  # the kind bit of the bands that belong to one connection


class Kind(IntEnum):
    """Which band a flow entry belongs to; part of its cookie. One per band."""

    MISS = 1
    PUNT = 2
    DENY = 3
    GUARD = 4
    QUARANTINE = 5
    FLOOD = 6
    PUNT_METERED = 7
    PUNT_OPENING = 0  # (the one kind number left outside the connections' half)
    CONNECTION = CONNECTION_SCOPED | 0
    SERVER_DROP = CONNECTION_SCOPED | 1
    FRAGMENTS = CONNECTION_SCOPED | 2
    SERVICE = CONNECTION_SCOPED | 3
    SERVICE_TRACK = CONNECTION_SCOPED | 4
    SERVICE_REPLY = CONNECTION_SCOPED | 5

    @property
    def connection_scoped(self) -> bool:
        """Whether the kind's cookies carry a connection id."""
        return bool(self & CONNECTION_SCOPED)


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
_HOST_BITS = (HOST_ID_LIMIT - 1) << _HOST_SHIFT
_CONNECTION_BITS = CONNECTION_ID_LIMIT - 1
HOST_MASK = KIND_MASK | _HOST_BITS
CONNECTIONS_MASK = OURS_MASK | (CONNECTION_SCOPED << _KIND_SHIFT)
CONNECTION_MASK = CONNECTIONS_MASK | _HOST_BITS | _CONNECTION_BITS
EXACT_MASK = (1 << 64) - 1


def ours_cookie() -> tuple[int, int]:
    """(cookie, mask) selecting every segctl entry."""
    return COOKIE_MAGIC << _MAGIC_SHIFT, OURS_MASK


def kind_cookie(kind: Kind) -> tuple[int, int]:
    """(cookie, mask) selecting every entry of one kind."""
    return make_cookie(kind), KIND_MASK


def host_cookie(kind: Kind, host_id: int) -> tuple[int, int]:
    """(cookie, mask) selecting a host's entries of one kind."""
    return make_cookie(kind, host_id), HOST_MASK


def connection_cookie(cookie: int) -> tuple[int, int]:
    """(cookie, mask) selecting every entry of the connection whose entry has `cookie`."""
    return cookie & CONNECTION_MASK, CONNECTION_MASK


def connections_cookie() -> tuple[int, int]:
    """(cookie, mask) selecting every entry of every connection."""
    return make_cookie(Kind.CONNECTION), CONNECTIONS_MASK


def cookie_ids(cookie: int) -> tuple[int, int]:
    """(host id, connection id) a cookie carries."""
    return (cookie >> _HOST_SHIFT) & (HOST_ID_LIMIT - 1), cookie & (CONNECTION_ID_LIMIT - 1)


# -- what bands pin ----------------------------------------------------------------------------
# Along a connection the client opened, the server sends only segments with ACK set (SYN+ACK
# first) or a RST. Anything else from it (a SYN, which opens a connection; a bare FIN or a NULL
# segment, which probe the client's ports) is dropped at its own port by an entry above the
# reply entries; its ACKs and RSTs pass in the switch (the client can make the server send
# those at will, and they must not reach the controller at the server's expense).
NEITHER_ACK_NOR_RST = (0, TCP_ACK | TCP_RST)
# Open vSwitch's ip_frag: a fragment (1), and not the first (2). Exact, not 3/3: a mask over all of
# the field's bits is stored (and reported back to the audit) as an exact match.
LATER_FRAGMENTS = 3
NOT_A_FRAGMENT = (0, 1)  # ICMP entries: even a switch left in "normal" fragment mode, where a
# fragment's type and code read 0, then never mistakes a fragment for an echo reply
IDLE_TIMEOUTS = {"tcp": 60, "udp": 30, "icmp": 10, "other": 30}
DENY_HOLD = 5  # seconds a denied flow is dropped at the ingress before it is asked again
GUARD_HOLD = 10  # seconds an unauthenticated sender is dropped at its port
CONFIGURED = None  # a timeout the configuration sets (protection.flood_hold): any positive value

# The order fields are listed in (OpenFlow's field numbers, then the Nicira extensions).
FIELDS = (
    "in_port", "eth_dst", "eth_src", "eth_type", "ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst",
    "udp_src", "udp_dst", "icmpv4_type", "icmpv4_code", "ip_frag", "tcp_flags_nxm", "ct_state",
)  # fmt: skip
ADDRESSES = frozenset({"eth_src", "eth_dst", "eth_type", "ipv4_src", "ipv4_dst", "ip_proto"})
PORTS = frozenset({"tcp_src", "tcp_dst", "udp_src", "udp_dst", "icmpv4_type", "icmpv4_code"})
ACTIONS = ("drop", "output", "controller", "commit-output", "track")

# The stateful pipeline (Open vSwitch's connection tracker, Nicira extensions). One zone holds
# segctl's connections; replies go through the tracker and on to REPLY_TABLE, where only those
# of connections it committed (+trk+est+rpl, not +inv) are forwarded. Anything else there
# misses, and OpenFlow 1.3 drops a packet that misses a table.
CONNTRACK_ZONE = 0x5E
REPLY_TABLE = 1
CT_NEW, CT_EST, CT_REL, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ESTABLISHED_REPLY = (CT_TRK | CT_EST | CT_RPL, CT_TRK | CT_EST | CT_RPL | CT_INV)
COMMIT = ("ct_commit", CONNTRACK_ZONE)
TRACK = ("ct_track", CONNTRACK_ZONE, REPLY_TABLE)


class OutsideBand(ValueError):
    """An entry that is not what its band declares: a bug in segctl."""


@dataclass(frozen=True)
class Band:
    """One priority band of the pipeline and everything an entry of it may be."""

    name: str
    priority: int
    kind: Kind
    action: str  # drop (no actions) | output (one port) | controller | commit-output | track
    description: str
    required: frozenset = frozenset()  # match fields every entry has
    optional: frozenset = frozenset()  # match fields an entry may have
    one_of: frozenset = frozenset()  # match fields of which an entry has exactly one
    values: tuple = ()  # (field, allowed values): what a field must be, when present
    metered: bool = False  # its entries pass their packets through a meter
    idle: tuple | None = (0,)  # the idle timeouts its entries may have; CONFIGURED: any > 0
    hard: tuple | None = (0,)  # the same for hard timeouts
    notifies: bool = False  # its entries may report their removal (OFPFF_SEND_FLOW_REM)
    ids: str = ""  # what its cookies carry: "" nothing, "host" a host id, "connection" both ids
    table: int = 0  # the flow table its entries go in

    def __post_init__(self) -> None:
        if self.action not in ACTIONS or self.ids not in ("", "host", "connection"):
            raise ValueError(f"band {self.name}: action {self.action!r}, ids {self.ids!r}")
        if (self.ids == "connection") != self.kind.connection_scoped:
            raise ValueError(f"band {self.name}: a connection's band needs a connection-scoped kind, and only it")

    def entry(
        self,
        dpid: int,
        match: tuple = (),
        actions: tuple | None = None,
        host_id: int = 0,
        connection_id: int = 0,
        idle: int | None = None,
        hard: int | None = None,
        notify: bool = False,
        meter: int | None = None,
    ) -> FlowAdd:
        """An entry of this band. A drop or a punt needs no `actions`; a timeout the band fixes
        to one value needs none either. (Checked where it is encoded, or taken by the fake
        switch: not twice on the packet path.)"""
        if actions is None:
            actions = self._actions
            if actions is None:
                raise OutsideBand(f"{self.name} band: name the port its entries output to")
        elif self.action == "commit-output":
            actions = (COMMIT, *actions)  # (given: where to, after the commit)
        # (make_cookie and the timeouts' defaults written out: this runs for every entry of
        # every connection, on the packet path)
        cookie = (
            (self._cookie_top << _KIND_SHIFT)
            | ((host_id % HOST_ID_LIMIT) << _HOST_SHIFT)
            | (connection_id % CONNECTION_ID_LIMIT)
        )
        if idle is None:
            idle = self._timeout("idle", self.idle)
        if hard is None:
            hard = self._timeout("hard", self.hard)
        return FlowAdd(dpid, self.priority, match, actions, cookie, idle, hard, notify, meter, self.table)

    def _timeout(self, which: str, declared: tuple | None) -> int:
        if declared is None or len(declared) != 1:
            raise OutsideBand(f"{self.name} band: give the entry's {which} timeout")
        return declared[0]

    def check(self, entry: FlowAdd) -> None:
        """Raise OutsideBand unless `entry` is what this band declares."""
        problem = self.problem(entry)
        if problem is not None:
            raise OutsideBand(f"{self.name} band: {problem}: {entry!r}")

    def problem(self, entry: FlowAdd) -> str | None:
        """What makes `entry` fall outside this band, None if nothing does. (Every entry is
        checked before it is encoded, on the packet path: this is kept cheap.)"""
        if entry.priority != self.priority:
            return f"priority {entry.priority}, not {self.priority}"
        if entry.table_id != self.table:
            return f"table {entry.table_id}, not {self.table}"
        cookie = entry.cookie
        if cookie >> _KIND_SHIFT != self._cookie_top:
            return f"cookie {cookie:#x} is not of kind {self.kind.name}"
        if (cookie & _HOST_BITS and not self.ids) or (cookie & _CONNECTION_BITS and self.ids != "connection"):
            return f"cookie {cookie:#x} carries ids the band has none of"
        match = entry.match
        names = tuple(map(_first, match))
        shape = self._shapes.get(names)
        if shape is None:
            shape = self._shapes[names] = self._shape(names)
        problem, pinned = shape
        if problem is not None:
            return problem
        for at, allowed in pinned:  # the fields of this shape whose values the band pins
            value = match[at][1]
            if value not in allowed:
                return f"{names[at]}={value!r}, not one of {allowed!r}"
        actions = entry.actions
        if self.action == "output":
            if len(actions) != 1 or len(actions[0]) != 2 or actions[0][0] != "output":
                return f"actions {actions!r}, not one output"
        elif self.action == "commit-output":
            if len(actions) != 2 or actions[0] != COMMIT or len(actions[1]) != 2 or actions[1][0] != "output":
                return f"actions {actions!r}, not a commit to zone {CONNTRACK_ZONE} and one output"
        elif actions != self._actions:
            return f"actions {actions!r}, not {self.action}"
        if (entry.meter is not None) != self.metered:
            return f"meter {entry.meter!r}" + (", not metered" if self.metered else " in an unmetered band")
        if entry.idle_timeout not in self._idle:
            return f"idle timeout {entry.idle_timeout}"
        if entry.hard_timeout not in self._hard:
            return f"hard timeout {entry.hard_timeout}"
        if entry.notify_removed and not self.notifies:
            return "reports its removal"
        return None

    def _shape(self, names: tuple) -> tuple:
        """(what is wrong with a match of these fields or None, (position, allowed values) of
        each pinned field among them), worked out once per shape."""
        pinned = self._pinned
        return self._fields_problem(frozenset(names)), tuple(
            (at, pinned[name]) for at, name in enumerate(names) if name in pinned
        )

    def _fields_problem(self, fields: frozenset) -> str | None:
        if not self.required <= fields:
            return f"match lacks {sorted(self.required - fields)}"
        stray = fields - self.required - self.optional - self.one_of
        if stray:
            return f"match has {sorted(stray)}"
        if self.one_of and len(self.one_of & fields) != 1:
            return f"match has not exactly one of {sorted(self.one_of)}"
        return None

    # What the checks compare with, worked out once.
    @cached_property
    def _cookie_top(self) -> int:
        """The magic and kind bits of the band's cookies."""
        return make_cookie(self.kind) >> _KIND_SHIFT

    @cached_property
    def _shapes(self) -> dict:
        """Each tuple of match field names seen (match_of sorts them): see _shape."""
        return {}

    @cached_property
    def _pinned(self) -> dict:
        return dict(self.values)

    @cached_property
    def _actions(self) -> tuple | None:
        """The actions the band fixes; None for an output band, whose entries each name a port."""
        return {"drop": (), "controller": (("controller",),), "track": (TRACK,)}.get(self.action)

    @cached_property
    def _idle(self):
        return _POSITIVE if self.idle is CONFIGURED else frozenset(self.idle)

    @cached_property
    def _hard(self):
        return _POSITIVE if self.hard is CONFIGURED else frozenset(self.hard)


class _Positive:
    """Every positive number of seconds: a timeout set by configuration."""

    def __contains__(self, value) -> bool:
        return value > 0


_POSITIVE = _Positive()
_CONNECTION_IDLE = tuple(sorted(set(IDLE_TIMEOUTS.values())))
_BY_PROTOCOL = ", ".join(f"{proto} {seconds} s" for proto, seconds in IDLE_TIMEOUTS.items())

QUARANTINE = Band(
    "quarantine",
    40000,
    Kind.QUARANTINE,
    "drop",
    "a quarantined host: everything it sends, and everything sent to it",
    one_of=frozenset({"eth_src", "eth_dst"}),
    ids="host",
)
GUARD = Band(
    "guard",
    30000,
    Kind.GUARD,
    "drop",
    "a sender that failed authentication, at its port (only its IPv4 source address when its MAC is genuine)",
    required=frozenset({"in_port", "eth_src"}),
    optional=frozenset({"eth_type", "ipv4_src"}),
    values=(("eth_type", (ETH_TYPE_IPV4,)),),
    hard=(GUARD_HOLD,),
)
DENY = Band(
    "deny",
    30000,
    Kind.DENY,
    "drop",
    "a denied flow, exactly, at its ingress port, so that its sender cannot flood the controller",
    required=frozenset({"in_port"}) | ADDRESSES,
    optional=PORTS,
    values=(("eth_type", (ETH_TYPE_IPV4,)),),
    hard=(DENY_HOLD,),
)
SERVER_DROP = Band(
    "server-drop",
    20100,
    Kind.SERVER_DROP,
    "drop",
    "a TCP connection's server side sending a segment with neither ACK nor RST (a SYN, a bare FIN), "
    "at the server's port; goes with the connection",
    required=frozenset({"in_port", "tcp_src", "tcp_dst", "tcp_flags_nxm"}) | ADDRESSES,
    values=(
        ("eth_type", (ETH_TYPE_IPV4,)),
        ("ip_proto", (IP_PROTO_TCP,)),
        ("tcp_flags_nxm", (NEITHER_ACK_NOR_RST,)),
    ),
    ids="connection",
)
CONNECTION = Band(
    "connection",
    20000,
    Kind.CONNECTION,
    "output",
    "one direction of an allowed connection at one switch, exactly (ICMP: whole packets only); idles out "
    f"by protocol ({_BY_PROTOCOL}); only the opening direction's ingress entry reports its expiry",
    required=frozenset({"in_port"}) | ADDRESSES,
    optional=PORTS | {"ip_frag"},
    values=(("eth_type", (ETH_TYPE_IPV4,)), ("ip_frag", (NOT_A_FRAGMENT,))),
    idle=_CONNECTION_IDLE,
    notifies=True,
    ids="connection",
)
FRAGMENTS = Band(
    "fragments",
    20000,
    Kind.FRAGMENTS,
    "output",
    "the later fragments (no ports) of one direction of an allowed connection: its addresses and protocol; "
    "idle as the connection's entries",
    required=frozenset({"in_port", "ip_frag"}) | ADDRESSES,
    values=(("eth_type", (ETH_TYPE_IPV4,)), ("ip_frag", (LATER_FRAGMENTS,))),
    idle=_CONNECTION_IDLE,
    ids="connection",
)
# The stateful pipeline's entries of one allowed TCP or UDP service (a client host, a server
# host, a protocol and the server's port): its connections from the client are committed and
# forwarded; its replies are looked up; those of committed connections are forwarded. Below the
# per-connection entries, so that a rule with `scope: connection` keeps its exact entries.
_SERVICE_PORTS = frozenset({"tcp_dst", "udp_dst"})
_REPLY_PORTS = frozenset({"tcp_src", "udp_src"})
_SERVICE_VALUES = (("eth_type", (ETH_TYPE_IPV4,)),)
SERVICE = Band(
    "service",
    19100,
    Kind.SERVICE,
    "commit-output",
    "stateful pipeline: one allowed TCP or UDP service (client, server, protocol, server port) at one switch; "
    "each packet commits its connection to the connection tracker and goes on; only the client's ingress entry "
    "reports its expiry",
    required=frozenset({"in_port"}) | ADDRESSES,
    one_of=_SERVICE_PORTS,
    values=_SERVICE_VALUES,
    idle=_CONNECTION_IDLE,
    notifies=True,
    ids="connection",
)
SERVICE_TRACK = Band(
    "service-track",
    19000,
    Kind.SERVICE_TRACK,
    "track",
    "stateful pipeline: the replies of one allowed service (from the server's port) at one "
    f"switch, looked up in the connection tracker and sent on to table {REPLY_TABLE}",
    required=frozenset({"in_port"}) | ADDRESSES,
    one_of=_REPLY_PORTS,
    values=_SERVICE_VALUES,
    idle=_CONNECTION_IDLE,
    ids="connection",
)
SERVICE_REPLY = Band(
    "service-reply",
    19000,
    Kind.SERVICE_REPLY,
    "output",
    f"table {REPLY_TABLE}, stateful pipeline: a reply of a connection the tracker knows (+trk+est+rpl-inv) of one "
    f"allowed service, forwarded; anything else in table {REPLY_TABLE} misses and is dropped",
    required=frozenset({"in_port", "ct_state"}) | ADDRESSES,
    one_of=_REPLY_PORTS,
    values=(*_SERVICE_VALUES, ("ct_state", (ESTABLISHED_REPLY,))),
    idle=_CONNECTION_IDLE,
    ids="connection",
    table=REPLY_TABLE,
)
FLOOD = Band(
    "flood",
    10000,
    Kind.FLOOD,
    "drop",
    "a port past its packet-in or denial budget: its new traffic, for `flood_hold` seconds "
    "(its connections above still flow)",
    required=frozenset({"in_port"}),
    hard=CONFIGURED,
)
PUNT_METERED = Band(
    "punt-metered",
    1100,
    Kind.PUNT_METERED,
    "controller",
    "per port: ARP and IPv4 to the controller, at most 2 × `packet_in_rate` a second",
    required=frozenset({"in_port", "eth_type"}),
    values=(("eth_type", (ETH_TYPE_ARP, ETH_TYPE_IPV4)),),
    metered=True,
)
# A TCP segment that opens a connection (SYN without ACK): to the controller as PUNT_METERED
# sends it, through the same meter, from an entry of its own. Open vSwitch caches what a packet
# met in its datapath, wildcarding the fields no entry looked at, and a flow-mod reaches that
# cache only when its revalidator next walks it (tens of milliseconds behind with thousands of
# cached flows): a SYN's "to the controller", cached across TCP flags, sent the connection's
# next segments to the controller too, each answered with its entries again, several times per
# connection. This entry looks at the flags, so what is cached for a SYN holds for SYNs only.
OPENING_SEGMENT = (TCP_SYN, TCP_SYN | TCP_ACK)
PUNT_OPENING = Band(
    "punt-opening",
    1150,
    Kind.PUNT_OPENING,
    "controller",
    "per port: a TCP segment that opens a connection (SYN, no ACK) to the controller through the port's meter, "
    "as punt-metered; its own entry keeps Open vSwitch from caching a SYN's way to the controller for the "
    "segments after it",
    required=frozenset({"in_port", "eth_type", "ip_proto", "tcp_flags_nxm"}),
    values=(("eth_type", (ETH_TYPE_IPV4,)), ("ip_proto", (IP_PROTO_TCP,)), ("tcp_flags_nxm", (OPENING_SEGMENT,))),
    metered=True,
)
PUNT = Band(
    "punt",
    1000,
    Kind.PUNT,
    "controller",
    "ARP, IPv4 and LLDP to the controller (serves alone on a switch without meters)",
    required=frozenset({"eth_type"}),
    values=(("eth_type", (ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_LLDP)),),
)
MISS = Band("miss", 0, Kind.MISS, "drop", "everything else")

PIPELINE = (
    QUARANTINE, GUARD, DENY, SERVER_DROP, CONNECTION, FRAGMENTS, SERVICE, SERVICE_TRACK, FLOOD, PUNT_OPENING,
    PUNT_METERED, PUNT, MISS, SERVICE_REPLY,
)  # fmt: skip
CONNECTION_BANDS = tuple(band for band in PIPELINE if band.kind.connection_scoped)
_BY_COOKIE_TOP = {band._cookie_top: band for band in PIPELINE}

PRIORITY_QUARANTINE = QUARANTINE.priority
PRIORITY_GUARD = GUARD.priority
PRIORITY_SERVER_SYN = SERVER_DROP.priority
PRIORITY_CONNECTION = CONNECTION.priority
PRIORITY_FLOOD = FLOOD.priority
PRIORITY_PUNT_OPENING = PUNT_OPENING.priority
PRIORITY_PUNT_METERED = PUNT_METERED.priority
PRIORITY_PUNT = PUNT.priority
PRIORITY_MISS = MISS.priority


def band_of(cookie: int) -> Band | None:
    """The band an entry with this cookie belongs to; None for an entry that is not segctl's."""
    return _BY_COOKIE_TOP.get(cookie >> _KIND_SHIFT)


def check_entry(entry: FlowAdd) -> None:
    """Raise OutsideBand unless `entry` is what the band its cookie names declares."""
    band = _BY_COOKIE_TOP.get(entry.cookie >> _KIND_SHIFT)
    if band is None:
        raise OutsideBand(f"cookie {entry.cookie:#x} names no band: {entry!r}")
    problem = band.problem(entry)
    if problem is not None:
        raise OutsideBand(f"{band.name} band: {problem}: {entry!r}")


# -- the README's table ------------------------------------------------------------------------
def _value(value) -> str:
    if isinstance(value, tuple):
        return "/".join(_value(part) for part in value)
    return f"{value:#06x}" if value > 0xFF else f"{value:#x}" if value > 9 else str(value)


def _match_cell(band: Band) -> str:
    pinned = dict(band.values)

    def fields(names: frozenset) -> list[str]:
        return [
            f"`{name}`" if name not in pinned else f"`{name}={' or '.join(_value(v) for v in pinned[name])}`"
            for name in FIELDS
            if name in names
        ]

    parts = fields(band.required)
    if band.one_of:
        parts.append(" or ".join(fields(band.one_of)))
    if band.optional:
        parts.append("optionally " + ", ".join(fields(band.optional)))
    return ", ".join(parts) or "anything"


def _timeouts_cell(band: Band) -> str:
    parts = []
    for which, declared in (("idle", band.idle), ("hard", band.hard)):
        if declared is CONFIGURED:
            parts.append(f"{which}: configured")
        elif declared != (0,):
            parts.append(f"{which} {' or '.join(map(str, declared))} s")
    if band.notifies:
        parts.append("may report its removal")
    return "; ".join(parts) or "none"


_ACTION_TEXT = {
    "commit-output": f"ct(commit, zone={CONNTRACK_ZONE}), output",
    "track": f"ct(zone={CONNTRACK_ZONE}, table={REPLY_TABLE})",
}


def pipeline_table_markdown() -> str:
    """README.md's table of the pipeline: one row per band, highest priority first."""
    rows = [
        "| (table:) priority | band | entries | match | action | timeouts | cookie: kind, ids |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for band in PIPELINE:
        action = _ACTION_TEXT.get(band.action, band.action) + (" through the port's meter" if band.metered else "")
        ids = {"": "", "host": ", host", "connection": ", host, connection"}[band.ids]
        priority = f"{band.table}: {band.priority}" if band.table else str(band.priority)
        cells = (priority, band.name, band.description, _match_cell(band), action, _timeouts_cell(band))
        rows.append("| " + " | ".join(map(str, cells)) + f" | {int(band.kind)}{ids} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(pipeline_table_markdown(), end="")
