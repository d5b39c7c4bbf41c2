"""The flow-table audit: what a switch really holds, held against what segctl put there.

Every `interval` seconds each switch's whole flow table is read (one switch at a time, spread
over the interval). An entry segctl did not write goes; a base, quarantine or server-side drop
entry that is missing comes back; an entry of a connection segctl no longer knows goes. Each
finding is one `drift` event.

Short-lived drops (a denied flow, an unauthenticated sender, a flooding port) are not put back
when they are missing: they only drop, and the next packet they would have dropped comes to the
controller, which decides it again. An entry of a known connection that is missing is not put
back either: it idled out, and the connection's next packet at its ingress reinstalls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .connections import Connection
from .flows import EntryDelete, FlowAdd, FlowStatsRequest, ObservedEntry, entry_key
from .ledger import Ledger
from .messages import Message
from .pipeline import DENY, FLOOD, FRAGMENTS, GUARD, SERVER_DROP, band_of, cookie_ids
from .planner import plan_connection, plan_later_fragments, plan_server_drop
from .quarantine import Quarantines

AUDIT_INTERVAL = 30.0  # seconds between two reads of one switch's flow table (the default)
FINDINGS_KEPT = 20  # findings of one audit kept for the audit view (every one is an event)
TRANSIENT_KINDS = frozenset({DENY.kind, GUARD.kind, FLOOD.kind})  # short-lived drops, by cookie kind


@dataclass
class SwitchAudit:
    """One switch's audit: the one running, or the last one finished."""

    dpid: int
    started: float
    entries: int = 0
    findings: int = 0
    finished: float | None = None
    examples: list[dict] = field(default_factory=list)
    seen: set = field(default_factory=set)  # keys of the required entries found so far
    server_drops: set = field(default_factory=set)  # ids of the connections whose server-side drop was found
    # ids of the connections to its servers opened since the read was sent (ConnectionTable.watchers)
    opened: set = field(default_factory=set)
    # id(entry) -> (entry, its connection or None, its key if required): entries found good
    good: dict = field(default_factory=dict)
    required: dict | None = None  # key -> entry the switch must hold (worked out once)

    def to_json(self) -> dict:
        """The audit as GET /v1/audit shows it."""
        return {
            "dpid": self.dpid,
            "time": self.finished,
            "entries": self.entries,
            "findings": self.findings,
            "examples": self.examples,
        }


class Auditor:
    def __init__(
        self, ledger: Ledger, quarantines: Quarantines, base: Callable[[int], list], interval: float = AUDIT_INTERVAL
    ) -> None:
        """`base(dpid)`: the entries a switch's pipeline needs whatever happens (the fabric's)."""
        self.ledger = ledger
        self.quarantines = quarantines
        self.base = base
        self.interval = interval
        self.last: dict[int, SwitchAudit] = {}  # dpid -> last finished audit
        self.last_drift: dict[int, SwitchAudit] = {}  # dpid -> last finished audit that found any
        self.drift_findings = 0
        self._running: dict[int, SwitchAudit] = {}
        self._good: dict[int, dict] = {}  # dpid -> SwitchAudit.good of its last finished audit
        self._next_read = 0.0
        self._turn = 0
        # connection id -> (dpid, key) of each of its entries: an entry of a known connection is
        # its own only on its own switch (on another, the same ports lead elsewhere)
        self._plans: dict[int, frozenset] = {}
        self._fragment_plans: dict[int, frozenset] = {}

    # -- when --------------------------------------------------------------------------------
    def due(self, now: float) -> list[Message]:
        """Called often (a few times a second): the read of the switch whose turn it is, if its
        time has come. Switches are read one after another, `interval / switches` apart."""
        switches = self.ledger.switches()
        if not self.interval or not switches or now < self._next_read:
            return []
        step = self.interval / len(switches)
        # On a schedule, not `step` after each read: a read that came a little late (the loop
        # asks a few times a second) does not push every later one back.
        self._next_read = self._next_read + step if self._next_read + step > now else now + step
        self._turn = (self._turn + 1) % len(switches)
        dpid = switches[self._turn]
        if dpid in self._running and now - self._running[dpid].started < self.interval:
            return []  # the last read is still being answered
        return self.begin(dpid, now)

    def begin(self, dpid: int, now: float) -> list[Message]:
        """Read one switch's flow table now."""
        self._stop(self._running.pop(dpid, None))
        audit = self._running[dpid] = SwitchAudit(dpid, now)
        self.ledger.connections.watchers[dpid] = audit.opened
        return [FlowStatsRequest(dpid)]

    def _stop(self, audit: SwitchAudit | None) -> None:
        """The audit no longer learns of the connections opened (it ended, or was replaced)."""
        watchers = self.ledger.connections.watchers
        if audit is not None and watchers.get(audit.dpid) is audit.opened:
            del watchers[audit.dpid]

    def forget_switch(self, dpid: int) -> None:
        """The switch left or reconnected: its running and its last audit are dropped."""
        self._stop(self._running.pop(dpid, None))
        self._good.pop(dpid, None)
        self.last.pop(dpid, None)
        self.last_drift.pop(dpid, None)

    # -- what ---------------------------------------------------------------------------------
    def observe(self, dpid: int, entries: list[ObservedEntry], now: float) -> list[Message]:
        """One part of a switch's answer: every entry held against what segctl expects there."""
        audit = self._running.get(dpid)
        if audit is None:
            return []  # an answer to a read of a previous connection of the switch
        required = self._required(audit)
        previous = self._good.get(dpid, {})
        live = self.ledger.connections.by_id
        messages: list[Message] = []
        for entry in entries:
            audit.entries += 1
            # An entry found good last time (the very same object: the shell decodes a record
            # it saw before only once) is good now if what made it good still holds.
            hit = previous.get(id(entry))
            if hit is not None and hit[0] is entry:
                _, connection, required_key = hit
                if required_key is not None and required_key in required:
                    audit.seen.add(required_key)
                    audit.good[id(entry)] = hit
                    continue
                if required_key is None and (connection is None or live.get(connection.id) is connection):
                    audit.good[id(entry)] = hit
                    if connection is not None and band_of(entry.cookie) is SERVER_DROP:
                        audit.server_drops.add(connection.id)
                    continue
            key = entry.key()
            if key in required:
                audit.seen.add(key)
                audit.good[id(entry)] = (entry, None, key)
                continue
            why = self._why_unexpected(dpid, entry, key, now)
            if why is not None:
                messages.append(EntryDelete(dpid, entry.table_id, entry.priority, entry.raw_match, entry.cookie))
                self._found(audit, now, entry.describe(), f"deleted: {why}")
            else:
                band = band_of(entry.cookie)
                if band is not None and band is not FLOOD:  # (a flood drop is good only while its port floods)
                    scoped = band.kind.connection_scoped
                    connection = live.get(cookie_ids(entry.cookie)[1]) if scoped else None
                    audit.good[id(entry)] = (entry, connection, None)
                    if band is SERVER_DROP and connection is not None:
                        audit.server_drops.add(connection.id)
        return messages

    def finish(self, dpid: int, now: float) -> list[Message]:
        """The switch's answer is complete: what it lacks is put back."""
        audit = self._running.pop(dpid, None)
        if audit is None:
            return []
        self._stop(audit)
        messages: list[Message] = []
        for key, entry in self._required(audit).items():
            if key not in audit.seen:
                messages.append(entry)
                self._found(audit, now, _describe(entry), "reinstalled: missing")
        for server_drop in self._server_drops_missing(audit):
            messages.append(server_drop)
            self._found(audit, now, _describe(server_drop), "reinstalled: missing")
        audit.finished = now
        self._good[dpid] = audit.good
        audit.seen, audit.server_drops, audit.opened, audit.required, audit.good = set(), set(), set(), None, {}
        self.last[dpid] = audit
        if audit.findings:
            self.last_drift[dpid] = audit
        live = self.ledger.connections.by_id
        self._plans = {ident: keys for ident, keys in self._plans.items() if ident in live}
        self._fragment_plans = {ident: keys for ident, keys in self._fragment_plans.items() if ident in live}
        return messages

    def _required(self, audit: SwitchAudit) -> dict[tuple, FlowAdd]:
        """The entries the switch must hold whatever connections there are: its base pipeline
        and every quarantine's drops. Worked out once an audit, when the answer starts to arrive."""
        if audit.required is None:
            dpid = audit.dpid
            entries = list(self.base(dpid)) + [m for m in self.quarantines.drops(dpid) if isinstance(m, FlowAdd)]
            audit.required = {entry_key(entry): entry for entry in entries}
        return audit.required

    def _server_drops_missing(self, audit: SwitchAudit) -> list[FlowAdd]:
        """The server-side drop of each TCP connection whose server is attached to the switch,
        opened before the read was sent (a later one's entries may come after the answer), that
        the answer lacked. Found by a set difference, not by planning every connection's: an
        audit costs the same whether the switch's servers have ten connections or 100,000."""
        connections = self.ledger.connections
        not_found = connections.by_server_switch.get(audit.dpid, set()) - audit.server_drops - audit.opened
        missing = []
        for ident in sorted(not_found):
            server_drop = plan_server_drop(connections.by_id[ident])
            if server_drop is not None:
                missing.append(server_drop)
        return missing

    def _why_unexpected(self, dpid: int, entry: ObservedEntry, key: tuple, now: float) -> str | None:
        """Why an entry that is not a required one must go, None when it may stay."""
        band = band_of(entry.cookie)
        if band is None:
            return (
                "not written by segctl" if entry.table_id == 0 else f"segctl writes nothing in table {entry.table_id}"
            )
        if entry.table_id != band.table:
            return f"the {band.name} band's entries go in table {band.table}, not {entry.table_id}"
        if band.kind in TRANSIENT_KINDS:
            problem = band.problem(_as_flow_add(dpid, entry))
            if problem is not None:
                return f"outside the {band.name} band: {problem}"
            if band is FLOOD and not self._flooding(dpid, entry, now):
                return "a flood drop on a port that is not flooding"
            return None
        if not band.kind.connection_scoped:
            return f"not one of the {band.name} entries segctl keeps here"
        connection = self.ledger.connections.by_id.get(cookie_ids(entry.cookie)[1])
        if connection is None or cookie_ids(entry.cookie) != cookie_ids(connection.cookie):
            return "an entry of a connection segctl no longer knows"
        if (dpid, key) not in self._plan_keys(connection, fragments=band is FRAGMENTS):
            return f"not an entry of connection {connection.id} ({connection.src.name} to {connection.dst.name})"
        return None

    def _flooding(self, dpid: int, entry: ObservedEntry, now: float) -> bool:
        """A flood drop is segctl's while its port's hold lasts (a hard timeout no longer than
        the policy's hold): a forged one would cut a port off for as long as it says."""
        port = dict(entry.match).get("in_port")
        until = self.ledger.flooding_until.get((dpid, port), 0.0) if isinstance(port, int) else 0.0
        return until > now and entry.hard_timeout <= self.ledger.protection.flood_hold

    def _plan_keys(self, connection: Connection, fragments: bool) -> frozenset:
        """(dpid, key) of each entry of the connection: its directions' and server-side drop,
        or (`fragments`) its later fragments' (planned only when a switch reports one)."""
        plans = self._fragment_plans if fragments else self._plans
        keys = plans.get(connection.id)
        if keys is None:
            if fragments:
                entries = [e for key in connection.directions() for e in plan_later_fragments(connection, key.pair)]
            else:
                entries = plan_connection(connection)
            keys = plans[connection.id] = frozenset((e.dpid, entry_key(e)) for e in entries)
        return keys

    def _found(self, audit: SwitchAudit, now: float, entry: str, what: str) -> None:
        audit.findings += 1
        self.drift_findings += 1
        if len(audit.examples) < FINDINGS_KEPT:
            audit.examples.append({"entry": entry, "action": what})
        self.ledger.events.record("drift", now, dpid=audit.dpid, entry=entry, action=what)

    # -- views -------------------------------------------------------------------------------
    def view(self) -> dict:
        """Each switch's last audit, and the last one that found drift (until the switch leaves:
        a later clean audit does not hide what was found)."""
        switches = []
        for dpid in sorted(self.last):
            view = self.last[dpid].to_json()
            drift = self.last_drift.get(dpid)
            view["last_drift"] = None if drift is None else drift.to_json()
            switches.append(view)
        return {"interval": self.interval, "drift_findings": self.drift_findings, "switches": switches}


def _as_flow_add(dpid: int, entry: ObservedEntry) -> FlowAdd:
    return FlowAdd(
        dpid,
        entry.priority,
        entry.match,
        entry.actions,
        entry.cookie,
        entry.idle_timeout,
        entry.hard_timeout,
        meter=entry.meter,
    )


def _describe(entry: FlowAdd) -> str:
    return ObservedEntry(
        0,
        entry.priority,
        entry.cookie,
        entry.idle_timeout,
        entry.hard_timeout,
        entry.match,
        entry.actions,
        entry.meter,
    ).describe()
