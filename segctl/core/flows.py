"""Plain descriptions of what segctl asks of a switch.

Nothing here knows OpenFlow's wire format: `segctl.ofmsg` turns these into messages. Match
fields use the OpenFlow 1.3 OXM names (in_port, eth_src, ipv4_dst, tcp_dst, ...). The priority
bands and cookies of the entries are `segctl.core.pipeline`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The messages built on the packet path (FlowAdd, FlowDelete, PacketOut, Barrier) and the entries
# an audit reads (ObservedEntry) are slotted and hashable but not frozen: a frozen dataclass's
# __init__ costs several times more, and several are built per packet. Treat them as values.


@dataclass(slots=True, unsafe_hash=True)
class FlowAdd:
    """Install an entry in table `table_id`. `actions` is a tuple of ("output", port),
    ("controller",), ("ct_commit", zone) (commit the packet's connection to the switch's
    connection tracker, then go on) and ("ct_track", zone, table) (look the packet up in the
    connection tracker and carry on in `table`, where ct_state tells what it found); empty drops."""

    dpid: int
    priority: int
    match: tuple
    actions: tuple
    cookie: int
    idle_timeout: int = 0
    hard_timeout: int = 0
    notify_removed: bool = False
    meter: int | None = None  # pass the entry's packets through this meter first
    table_id: int = 0

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


@dataclass(slots=True, unsafe_hash=True)
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
class EntryDelete:
    """Delete exactly one entry, read back from the switch (OpenFlow's strict delete): the one
    in `table_id` with this priority, this match, given as the switch wrote it (`raw_match`,
    an encoded OXM match, so that an entry with fields segctl never uses can go too), and this
    cookie (the switch's answer is a snapshot: by the time it is audited, the entry may have
    been replaced by a newer connection's with the same match, and another cookie)."""

    dpid: int
    table_id: int
    priority: int
    raw_match: bytes = field(repr=False)
    cookie: int = 0  # the cookie the switch reported: a newer entry with the same match is spared


@dataclass(frozen=True)
class FlowStatsRequest:
    """Ask the switch for every entry of every table (answered by `ObservedEntry`s)."""

    dpid: int


@dataclass(slots=True, unsafe_hash=True)
class ObservedEntry:
    """An entry as a switch reported it (an OpenFlow flow-stats record). `match` and `actions`
    are in FlowAdd's terms where segctl knows the field or action; anything else appears as
    ("oxm:CLASS:FIELD", hex) or ("action:TYPE",) / ("instruction:TYPE",), which no entry
    segctl writes has."""

    table_id: int
    priority: int
    cookie: int
    idle_timeout: int
    hard_timeout: int
    match: tuple
    actions: tuple
    meter: int | None = None
    raw_match: bytes = field(default=b"", repr=False)

    def key(self) -> tuple:
        """What makes two entries the same entry, as segctl writes them (see entry_key)."""
        return (
            self.table_id,
            self.priority,
            self.cookie,
            self.match,
            self.actions,
            self.meter,
            self.idle_timeout,
            self.hard_timeout,
        )

    def describe(self) -> str:
        """One line, ovs-ofctl-like: what an engineer reads in a drift event."""
        fields = ",".join(f"{name}={value}" for name, value in self.match) or "*"
        actions = ",".join(_action_text(action) for action in self.actions) or "drop"
        table = f"table={self.table_id} " if self.table_id else ""
        return f"{table}priority={self.priority} cookie={self.cookie:#x} match={fields} actions={actions}"


RESERVED_PORTS = {
    0xFFFFFFF8: "IN_PORT",
    0xFFFFFFF9: "TABLE",
    0xFFFFFFFA: "NORMAL",
    0xFFFFFFFB: "FLOOD",
    0xFFFFFFFC: "ALL",
    0xFFFFFFFD: "CONTROLLER",
    0xFFFFFFFE: "LOCAL",
}


TABLE_PORT = 0xFFFFFFF9  # a packet-out to it goes through the switch's own table, as if it came in


def _action_text(action: tuple) -> str:
    if action[0] == "output" and action[1] in RESERVED_PORTS:
        return f"output:{RESERVED_PORTS[action[1]]}"
    if action[0] == "ct_commit":
        return f"ct(commit,zone={action[1]})"
    if action[0] == "ct_track":
        return f"ct(table={action[2]},zone={action[1]})"
    return ":".join(str(part) for part in action)


def entry_key(entry: FlowAdd) -> tuple:
    """The identity of an entry segctl writes, comparable with ObservedEntry.key()."""
    return (
        entry.table_id,
        entry.priority,
        entry.cookie,
        entry.match,
        entry.actions,
        entry.meter,
        entry.idle_timeout,
        entry.hard_timeout,
    )


@dataclass(slots=True, unsafe_hash=True)
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


@dataclass(slots=True, unsafe_hash=True)
class Barrier:
    """Ask the switch to confirm everything sent before this."""

    dpid: int


def match_of(**fields) -> tuple:
    """A canonical (sorted, hashable) match from OXM field names; a field given as None is left
    out. (Built for every entry of every connection: the common case, no None, is sorted in C.)"""
    if None in fields.values():
        fields = {name: value for name, value in fields.items() if value is not None}
    return tuple(sorted(fields.items()))
