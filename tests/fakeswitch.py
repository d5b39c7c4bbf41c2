"""A fake OpenFlow 1.3 fabric that applies segctl's plain messages the way the spec (and Open
vSwitch) does, so tests can ask where a packet would go instead of comparing flow bytes.

Where it behaves like the wire:
- Messages reach each switch in the order `segctl.ofmsg.order` puts them, as the Ryu app
  sends them: per switch, deletions and meters first, then additions and packet-outs.
- An add with the match and priority of an existing entry replaces it, silently (no
  FlowRemoved, OF1.3 6.4); a non-strict delete takes every entry whose cookie matches under
  the mask and whose match holds every field of the delete's match.
- Entries expire: a hard timeout counts from the add, an idle timeout from the last packet
  that matched (a `trace` is traffic). Time is a clock the test controls.
- An entry added with notify_removed (OFPFF_SEND_FLOW_REM) yields a FlowRemoved when it
  times out (reason idle_timeout / hard_timeout) and when a delete takes it (reason delete).
  They queue in `removed`; with `on_removed` set (the controller) they are handed to it, and
  what it answers is applied, as the Ryu app's FlowRemoved handler does.
- Meters: an entry naming a meter the switch does not have is refused (recorded in
  `errors`); (re)setting or clearing a meter deletes the entries that use it (Open vSwitch);
  a metered entry's packets beyond the meter's rate and burst are dropped.
- Fragments: a switch starts in OpenFlow's "normal" fragment mode, where an IP fragment's
  transport fields (ports, ICMP type and code, TCP flags) read as zero; segctl's SwitchConfig
  puts it in Open vSwitch's "nx-match" mode, where a first fragment shows its own.
- A switch can be stalled: it takes nothing and answers no barrier until resumed.

Where it is stricter than the wire: every entry it takes must be what its band of segctl's
pipeline declares (segctl.core.pipeline.check_entry, which ofmsg.encode applies before the wire);
one outside its band raises OutsideBand. Only the tests of the fake fabric's own mechanics, which
need arbitrary entries, turn that off (`checked=False`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from segctl import ofmsg
from segctl.core.flows import (
    TABLE_PORT,
    Barrier,
    EntryDelete,
    FlowAdd,
    FlowDelete,
    FlowStatsRequest,
    MetersClear,
    MeterSet,
    PacketOut,
    SwitchConfig,
)
from segctl.core.messages import for_switches
from segctl.core.pipeline import Band, band_of, check_entry

NEVER = float("inf")
# The transport fields of each IP protocol, as a switch extracts them.
TRANSPORT_FIELDS = {
    6: ("tcp_src", "tcp_dst", "tcp_flags_nxm"),
    17: ("udp_src", "udp_dst"),
    1: ("icmpv4_type", "icmpv4_code"),
}
FRAGMENT = 1  # the ip_frag bit of any fragment, first or later


@dataclass(frozen=True)
class FlowRemoved:
    """What a switch tells the controller when an entry with notify_removed goes."""

    dpid: int
    cookie: int
    reason: str  # idle_timeout | hard_timeout | delete | meter_delete
    priority: int
    match: tuple


def _slot(entry: FlowAdd) -> tuple:
    """What an entry replaces: one with the same table, priority and match (OF1.3 6.4)."""
    return (entry.table_id, entry.priority, entry.match)


# Open vSwitch's ct_state bits (segctl.core.pipeline names them too).
CT_NEW, CT_EST, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x08, 0x10, 0x20
TCP_SYN, TCP_ACK = 0x02, 0x10
ICMP_REPLY = {8: 0, 13: 14, 15: 16, 17: 18}


class FakeConntrack:
    """A switch's connection tracker, as much of it as segctl's stateful pipeline relies on:
    a connection is committed by its first packet's direction; a later packet is +est in that
    direction, +est+rpl in the other; a TCP SYN against a connection's direction, or a SYN+ACK
    that opens nothing, is +inv; anything else is +new. Zones keep their connections apart."""

    def __init__(self) -> None:
        self.connections: set[tuple] = set()  # (zone, the opening direction's tuple)

    @staticmethod
    def tuples(fields: dict) -> tuple[tuple, tuple] | None:
        """(this direction's tuple, the other direction's), None for a packet it cannot track."""
        proto = fields.get("ip_proto")
        src, dst = fields.get("ipv4_src"), fields.get("ipv4_dst")
        if proto == 1:
            kind = fields.get("icmpv4_type")
            replies = {reply: request for request, reply in ICMP_REPLY.items()}
            if kind in ICMP_REPLY:
                return (src, dst, 1, kind), (dst, src, 1, ICMP_REPLY[kind])
            if kind in replies:
                return (src, dst, 1, kind), (dst, src, 1, replies[kind])
            return None
        names = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}.get(proto)
        if names is None or fields.get(names[0]) is None:
            return None
        sport, dport = fields[names[0]], fields[names[1]]
        return (src, dst, proto, sport, dport), (dst, src, proto, dport, sport)

    def state(self, zone: int, fields: dict) -> int:
        tuples = self.tuples(fields)
        if tuples is None:
            return CT_TRK | CT_INV
        here, there = tuples
        flags = fields.get("tcp_flags_nxm", 0) if fields.get("ip_proto") == 6 else 0
        syn_only = flags & (TCP_SYN | TCP_ACK) == TCP_SYN
        if (zone, here) in self.connections:
            return CT_TRK | CT_EST
        if (zone, there) in self.connections:
            return CT_TRK | (CT_INV if syn_only else CT_EST | CT_RPL)
        if flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
            return CT_TRK | CT_INV
        return CT_TRK | CT_NEW

    def commit(self, zone: int, fields: dict) -> None:
        tuples = self.tuples(fields)
        if tuples is not None and self.state(zone, fields) & CT_NEW:
            self.connections.add((zone, tuples[0]))


def _field_matches(packet_value, entry_value) -> bool:
    """An exact field, or a (value, mask) pair as OpenFlow masks it."""
    if isinstance(entry_value, tuple):
        value, mask = entry_value
        return packet_value is not None and packet_value & mask == value
    return packet_value == entry_value


class _Meter:
    """A packets-per-second token bucket with a burst, as OFPMF_PKTPS | OFPMF_BURST."""

    def __init__(self, rate: int, burst: int, now: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.last = float(burst), now

    def admit(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def as_reported(entry: FlowAdd) -> FlowAdd:
    """An entry as Open vSwitch reports it to a flow-stats request: a field masked over all of its
    bits is stored, and reported, as an exact match (ip_frag=3/3 comes back as ip_frag=3)."""
    full = {"ip_frag": 3}
    match = tuple(
        (name, value[0]) if isinstance(value, tuple) and value[1] == full.get(name) else (name, value)
        for name, value in entry.match
    )
    return entry if match == entry.match else dataclasses.replace(entry, match=match)


class FakeTable:
    def __init__(
        self, dpid: int = 0, clock=None, removed: list | None = None, errors: list | None = None, checked: bool = True
    ) -> None:
        self.dpid = dpid
        self.checked = checked
        self.entries: list[FlowAdd] = []
        self.meters: dict[int, _Meter] = {}
        self.clock = clock or (lambda: 0.0)
        self.removed = removed if removed is not None else []
        self.errors = errors if errors is not None else []
        self._times: dict[tuple, list[float]] = {}  # (table, priority, match) -> [added, last matched]
        self.conntrack = FakeConntrack()
        self.reads = 0  # flow-stats requests taken
        self.other_tables: list[tuple[int, FlowAdd]] = []  # (table, entry) written by hand
        self.frag_mode = "normal"  # until a SwitchConfig: fragments' transport fields read as zero

    def add_by_hand(self, entry: FlowAdd, table_id: int = 0) -> None:
        """An entry someone else wrote (`ovs-ofctl add-flow`): no band, no check. Only table 0 is
        modelled for forwarding; an entry for another table is only reported."""
        if table_id:
            self.other_tables.append((table_id, entry))
            return
        self.entries = [e for e in self.entries if (e.priority, e.match) != (entry.priority, entry.match)]
        self.entries.append(entry)
        self._times[_slot(entry)] = [self.clock(), self.clock()]

    def flow_stats(self, per_part: int = 50) -> list[bytes]:
        """The table as the switch reports it to a flow-stats request: parts of `per_part`
        entries, each but the last flagged "more"."""
        entries = [as_reported(entry) for entry in self.entries]
        parts: list = [(None, entries[at : at + per_part]) for at in range(0, len(entries), per_part)] or [(0, [])]
        parts += [(table_id, [entry]) for table_id, entry in self.other_tables]
        return [
            ofmsg.encode_flow_stats_reply(part, more=n < len(parts) - 1, table_id=table_id)
            for n, (table_id, part) in enumerate(parts)
        ]

    def apply(self, message) -> None:
        now = self.clock()
        if isinstance(message, FlowAdd):
            if self.checked:
                check_entry(message)
            if message.meter is not None and message.meter not in self.meters:
                self.errors.append((self.dpid, "unknown meter", message))  # OFPMMFC_UNKNOWN_METER
                return
            # An add with the same match and priority replaces the entry, without a FlowRemoved.
            self.entries = [e for e in self.entries if _slot(e) != _slot(message)]
            self.entries.append(message)
            self._times[_slot(message)] = [now, now]
        elif isinstance(message, EntryDelete):  # strict: table, priority, match and cookie
            match = ofmsg.decode_match(message.raw_match)
            wanted = (message.table_id, message.priority, match, message.cookie)
            self.other_tables = [(t, e) for t, e in self.other_tables if (t, e.priority, e.match, e.cookie) != wanted]
            self._remove([e for e in self.entries if (e.table_id, e.priority, e.match, e.cookie) == wanted], "delete")
        elif isinstance(message, FlowStatsRequest):
            self.reads += 1
        elif isinstance(message, FlowDelete):
            wanted = message.match_dict()
            self._remove(
                [
                    e
                    for e in self.entries
                    if (e.cookie & message.cookie_mask) == (message.cookie & message.cookie_mask)
                    and all(e.match_dict().get(k) == v for k, v in wanted.items())
                ],
                "delete",
            )
        elif isinstance(message, MeterSet):
            # Open vSwitch: deleting a meter (segctl sends delete + add) takes its entries with it.
            if message.meter_id in self.meters:
                self._remove([e for e in self.entries if e.meter == message.meter_id], "meter_delete")
            self.meters[message.meter_id] = _Meter(message.rate, message.burst, now)
        elif isinstance(message, MetersClear):
            self._remove([e for e in self.entries if e.meter is not None], "meter_delete")
            self.meters.clear()
        elif isinstance(message, SwitchConfig):
            self.frag_mode = "nx-match"  # a first fragment shows its transport fields
        else:
            raise TypeError(f"a switch table does not take {message!r}")

    def _remove(self, gone: list[FlowAdd], reason: str) -> None:
        if not gone:
            return
        ids = {id(e) for e in gone}
        self.entries = [e for e in self.entries if id(e) not in ids]
        for entry in gone:
            self._times.pop(_slot(entry), None)
            if entry.notify_removed:
                self.removed.append(FlowRemoved(self.dpid, entry.cookie, reason, entry.priority, entry.match))

    def deadline(self, entry: FlowAdd) -> tuple[float, str]:
        """When the entry times out, and why."""
        added, used = self._times[_slot(entry)]
        hard = added + entry.hard_timeout if entry.hard_timeout else NEVER
        idle = used + entry.idle_timeout if entry.idle_timeout else NEVER
        return (hard, "hard_timeout") if hard <= idle else (idle, "idle_timeout")

    def expire(self, now: float | None = None) -> None:
        """Remove what timed out by `now`, earliest first (the order the switch reports it)."""
        now = self.clock() if now is None else now
        expired = [(self.deadline(e), e) for e in self.entries if self.deadline(e)[0] <= now]
        for (_, reason), entry in sorted(expired, key=lambda item: item[0][0]):
            self._remove([entry], reason)

    def seen(self, fields: dict) -> dict:
        """The fields as this switch extracts them: in "normal" fragment mode a fragment's
        transport fields are all zero (Open vSwitch), whatever the packet carries."""
        if self.frag_mode != "normal" or not fields.get("ip_frag", 0) & FRAGMENT:
            return fields
        return dict(fields, **dict.fromkeys(TRANSPORT_FIELDS.get(fields.get("ip_proto"), ()), 0))

    def lookup(self, fields: dict, table_id: int = 0) -> FlowAdd | None:
        fields = self.seen(fields)
        best = None
        for entry in self.entries:
            if entry.table_id != table_id:
                continue
            matches = all(_field_matches(fields.get(k), v) for k, v in entry.match)
            if matches and (best is None or entry.priority > best.priority):
                best = entry
        return best

    def hit(self, entry: FlowAdd) -> bool:
        """A packet matched `entry`: it counts as traffic for the idle timeout. False when the
        entry's meter drops the packet."""
        now = self.clock()
        self._times[_slot(entry)][1] = now
        if entry.meter is None:
            return True
        return self.meters[entry.meter].admit(now)


class FakeFabric:
    def __init__(self, links=(), clock=None, checked: bool = True) -> None:
        self.checked = checked  # every entry taken is checked against its band
        self.time = 0.0
        self.clock = clock or (lambda: self.time)
        self.tables: dict[int, FakeTable] = {}
        self.links: dict[tuple[int, int], tuple[int, int]] = {}
        self.packet_outs: list[PacketOut] = []
        self.taken: list = []  # every message the switches took, in the order each took them
        self.barriers: list[int] = []  # the switches that answered a barrier, in order
        self.removed: list[FlowRemoved] = []  # sent by the switches, not yet taken by anyone
        self.errors: list[tuple] = []  # (dpid, what, message) the switches refused
        self.on_removed = None  # the controller: FlowRemoved -> messages to apply
        self.hold_removed = False  # True: FlowRemoved wait in `removed` until deliver_removed()
        self.stalled: dict[int, list] = {}  # switches that take nothing and answer nothing yet
        self.saves = 0  # how many times the core asked for its state to be saved (SaveState)
        self._delivering = False
        for a, a_port, b, b_port in links:
            self.links[(a, a_port)] = (b, b_port)
            self.links[(b, b_port)] = (a, a_port)

    def table(self, dpid: int) -> FakeTable:
        if dpid not in self.tables:
            self.tables[dpid] = FakeTable(dpid, self.clock, self.removed, self.errors, self.checked)
        return self.tables[dpid]

    # -- the control channel -----------------------------------------------------------------
    def apply(self, messages) -> list:
        """Send a batch as the runtime and the Ryu app do (state saved first, then
        segctl.ofmsg.order); returns it unchanged."""
        self._expire()
        switch_messages, save = for_switches(list(messages))
        self.saves += save
        for message in ofmsg.order(switch_messages):
            if message.dpid in self.stalled:
                self.stalled[message.dpid].append(message)
            else:
                self._take(message)
        self.deliver_removed()
        return messages

    def _take(self, message) -> None:
        self.taken.append(message)
        if isinstance(message, PacketOut):
            self.packet_outs.append(message)
        elif isinstance(message, Barrier):
            self.barriers.append(message.dpid)
        else:
            self.table(message.dpid).apply(message)

    def stall(self, dpid: int) -> None:
        """The switch stops taking messages and answering barriers (its entries still work)."""
        self.stalled.setdefault(dpid, [])

    def resume(self, dpid: int) -> None:
        """The switch takes what was sent to it meanwhile, in the order it was sent."""
        for message in self.stalled.pop(dpid, []):
            self._take(message)
        self.deliver_removed()

    def deliver_removed(self) -> None:
        """Hand every queued FlowRemoved (but a stalled switch's) to `on_removed` and apply its
        answer; answers may cause more. Nothing happens while `hold_removed` is set."""
        if self.on_removed is None or self.hold_removed or self._delivering:
            return
        self._delivering = True
        try:
            while True:
                ready = next((r for r in self.removed if r.dpid not in self.stalled), None)
                if ready is None:
                    return
                self.removed.remove(ready)
                self.apply(self.on_removed(ready))
        finally:
            self._delivering = False

    def _expire(self) -> None:
        now = self.clock()
        for table in self.tables.values():
            table.expire(now)

    def expire(self) -> None:
        """Let every switch time out what is due by the clock, and report it."""
        self._expire()
        self.deliver_removed()

    # -- questions ---------------------------------------------------------------------------
    def entries(self, dpid: int | None = None) -> list[FlowAdd]:
        self.expire()
        tables = self.tables.values() if dpid is None else [self.tables.get(dpid, FakeTable())]
        return [e for t in tables for e in t.entries]

    def entries_of(self, *bands: Band, dpid: int | None = None) -> list[FlowAdd]:
        """The entries of these bands of the pipeline (on one switch, or all)."""
        return [e for e in self.entries(dpid) if band_of(e.cookie) in bands]

    def snapshot(self) -> dict[int, Counter]:
        """Every switch's entries, for comparing two moments."""
        self.expire()
        return {dpid: Counter(table.entries) for dpid, table in self.tables.items() if table.entries}

    def trace(self, dpid: int, in_port: int, fields: dict, max_hops: int = 16) -> tuple:
        """Send a packet in at (dpid, in_port): ("out", dpid, port) when it leaves the fabric,
        ("controller", dpid) or ("drop", dpid). The entries it matches count it as traffic;
        its connection-tracking actions change the switch's tracker."""
        self.expire()
        for _ in range(max_hops):
            table = self.tables.get(dpid)
            port = self._through(table, dict(fields, in_port=in_port)) if table else None
            if port is None or port == "controller":
                return ("drop", dpid) if port is None else ("controller", dpid)
            if (dpid, port) not in self.links:
                return ("out", dpid, port)
            dpid, in_port = self.links[(dpid, port)]
        return ("loop", dpid)

    @staticmethod
    def _through(table: FakeTable, fields: dict, table_id: int = 0):
        """A packet through one switch's tables: the port it leaves by, "controller", or None
        (dropped)."""
        while True:
            entry = table.lookup(fields, table_id)
            if entry is None or not table.hit(entry):
                return None
            for action in entry.actions:
                if action[0] == "controller":
                    return "controller"
                if action[0] == "output":
                    return action[1]
                if action[0] == "ct_commit":
                    table.conntrack.commit(action[1], fields)
                elif action[0] == "ct_track":
                    fields = dict(fields, ct_state=table.conntrack.state(action[1], fields))
                    table_id = action[2]
                    break
            else:
                return None  # no output: dropped
            continue

    def follow(self, dpid: int, port: int, fields: dict, in_port: int | None = None) -> tuple:
        """Where a packet the controller sends out of (dpid, port) ends up: out of that port if
        it faces a host, else on through the switch at the other end of the link; sent to the
        switch's table (TABLE_PORT), as if it came in at `in_port`."""
        if port == TABLE_PORT:
            return self.trace(dpid, in_port, fields)
        if (dpid, port) not in self.links:
            return ("out", dpid, port)
        return self.trace(*self.links[(dpid, port)], fields)
