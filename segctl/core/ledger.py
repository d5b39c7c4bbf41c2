"""The state every room of the controller reads and changes: which switches and links are up,
which host is bound where, which connections live, who is quarantined, and the policy in force.

The transitions several rooms share (forgetting a connection, unbinding a host) are written
here once. Nothing here decides: the rooms do.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bindings import Bindings
from .connections import Connection, ConnectionTable
from .decision import DecisionIndex
from .directory import Directory, Host
from .events import EventLog
from .messages import Message
from .planner import plan_revoke
from .policy import Policy
from .protection import PortRateLimiter, Protection, ScanDetector
from .revocations import plan_revocations
from .topology import Topology

STRANGERS_LIMIT = 1000  # devices not in the directory remembered for the hosts view, newest kept


@dataclass
class QuarantineEntry:
    name: str
    mac: str
    reason: str
    since: float
    by: str = ""

    def to_json(self) -> dict:
        """The quarantine as the API shows it and the state file keeps it."""
        return {"host": self.name, "mac": self.mac, "reason": self.reason, "since": self.since, "by": self.by}


def _revoked(connection: Connection, reason: str) -> dict:
    """What a connection's revoke record says besides its time."""
    return {
        "src": connection.src.name,
        "dst": connection.dst.name,
        "rule": connection.rule,
        "reason": reason,
        **connection.key.describe(),
    }


class Ledger:
    """The controller's shared state. Rooms hold one ledger; none holds another room's state."""

    def __init__(self, directory: Directory, policy: Policy, events: EventLog | None = None) -> None:
        self.directory = directory
        self.events = events or EventLog()
        self.topology = Topology()
        self.bindings = Bindings(self.topology.is_live)
        self.connections = ConnectionTable()
        self.quarantined: dict[str, QuarantineEntry] = {}
        self.strangers: dict[str, dict] = {}
        self.flooding_until: dict[tuple[int, int], float] = {}
        self.packet_ins = 0
        self.conntrack_switches: set[int] = set()
        # Until then no sender is bound at a port that is not a known link: a switch just
        # (re)connected, and a probe may not have crossed every link yet (see Edge.admit).
        self.settling_until = 0.0  # switches known to track connections (Open vSwitch)
        # Ends of links that went down while their ports stayed up, and the link ends of the run
        # before a restart: a neighbour that lost its controller (or has not come back to this
        # one yet) still forwards its hosts' packets there. No host is bound at one until the
        # link is seen again or the port goes down (see Edge.admit); the state file keeps them.
        self.former_link_ports: set[tuple[int, int]] = set()
        self._host_ids: dict[str, int] = {}
        self.use_policy(policy)

    def link_end_set(self) -> set[tuple[int, int]]:
        """Every port that is, or was while its port stayed up, the end of a link: what a
        restart must remember (the state file's `link_ends`, in `link_ends()`'s order)."""
        return self.topology.link_ports.keys() | self.former_link_ports

    def link_ends(self) -> list[list[int]]:
        return [list(end) for end in sorted(self.link_end_set())]

    def use_policy(self, policy: Policy) -> None:
        """Put a policy in force, with its compiled index and its flood protection."""
        self.policy = policy
        self.index = DecisionIndex(policy)
        self.protection: Protection = policy.protection
        p = policy.protection
        self.limiter = PortRateLimiter(p.packet_in_rate, p.packet_in_burst)
        self.denials = PortRateLimiter(p.denied_rate, p.denied_burst)
        self.scans = ScanDetector(p.scan_denied, p.scan_seconds) if p.scan_denied else None

    # -- reads -------------------------------------------------------------------------------
    def host_id(self, name: str) -> int:
        """A small number for a host name, stable for this run: part of its entries' cookies."""
        return self._host_ids.setdefault(name, len(self._host_ids) + 1)

    def is_quarantined(self, host: Host) -> bool:
        return host.name in self.quarantined

    def bound_ip(self, host: Host) -> str | None:
        """The address `host` uses: the directory's, else the one it was bound with."""
        if host.ip:
            return host.ip
        binding = self.bindings.by_mac.get(host.mac)
        return binding.ip if binding else None

    def tracks_connections(self, path) -> bool:
        """Whether a connection along `path` goes on the stateful pipeline: the policy's
        `pipeline`, and for `auto`, every switch of the path tracks connections."""
        pipeline = self.policy.pipeline
        if pipeline == "auto":
            return all(hop.dpid in self.conntrack_switches for hop in path)
        return pipeline == "stateful"

    def switches(self) -> list[int]:
        """The connected switches' datapath ids, in order."""
        return sorted(self.topology.ports)

    def remember_stranger(self, mac: str, ip: str | None, dpid: int, port: int, now: float) -> None:
        """Note a device not in the directory for the hosts view (the oldest beyond STRANGERS_LIMIT go)."""
        self.strangers[mac] = {"mac": mac, "ip": ip, "dpid": dpid, "port": port, "last_seen": now}
        if len(self.strangers) > STRANGERS_LIMIT:
            self.strangers.pop(next(iter(self.strangers)))

    # -- shared transitions ------------------------------------------------------------------
    def revoke(self, connection: Connection, now: float, reason: str, skip: int | None = None) -> list[Message]:
        """Forget the connection and delete its entries on every switch of its path but `skip`."""
        self.forget_connection(connection, now, reason)
        return [m for m in plan_revoke(connection) if m.dpid != skip]

    def revoke_all(self, connections: list[Connection], now: float, reason: str) -> list[Message]:
        """Forget the connections and delete their entries on every switch of their paths, in
        as few deletes as the connections that stay allow (segctl.core.revocations). Looks at
        every live connection: for a batch as large as a reload's."""
        self.forget_connections(connections, now, reason)
        return [*plan_revocations(connections, self.connections.by_id.values())]

    def forget_connection(self, connection: Connection, now: float, reason: str) -> None:
        """Drop the connection and record its revoke; deleting its entries is the caller's."""
        self.forget_connections([connection], now, reason)

    def forget_connections(self, connections: list[Connection], now: float, reason: str) -> None:
        """forget_connection for each, in order, in one go."""
        remove = self.connections.remove
        for connection in connections:
            remove(connection.id)
        self.events.record_later("revoke", now, (_revoked(connection, reason) for connection in connections))

    def unbind(self, mac: str, now: float, reason: str) -> list[Message]:
        """The host at `mac` is no longer where it was: its connections go with its binding."""
        binding = self.bindings.forget(mac)
        messages: list[Message] = []
        for connection in self.connections.involving(mac):
            messages += self.revoke(connection, now, reason)
        if binding is not None:
            self.events.record("unbind", now, host=binding.host.name, reason=reason)
        return messages
