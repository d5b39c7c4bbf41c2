"""Flow setup: applies the verdict on an IPv4 packet (segctl.core.verdict) once: connections
opened and their entries planned, denials cached at the ingress, packets carried along their
connection, and connections ended when their entries expire."""

from __future__ import annotations

from .connections import Connection, FlowKey
from .directory import Host
from .edge import Edge
from .flood import FloodGuard
from .flows import TABLE_PORT, PacketOut
from .ledger import Ledger
from .messages import SAVE_STATE, Message
from .packets import Frame
from .pipeline import CONNECTION_MASK, Kind, make_cookie, parse_cookie
from .planner import first_packet_out, plan_connection, plan_deny, plan_later_fragments, plan_revoke
from .quarantine import Quarantines
from .topology import reverse_hops
from .verdict import Allow, Deliver, Deny, Hold, Ignore, Transit, Unreachable, Verdict, decide, decide_transit

# A packet sent back through a switch's table (the stateful pipeline) that comes back to the
# controller from the same port within this many seconds was not taken by the entries it was
# sent to: the switch reads it differently than segctl does (a transport header cut short, an
# IPv4 total length past the frame, an ICMP message in fragments). It is dropped, not sent
# through the table again, which would loop it between the switch and the controller for ever.
TABLE_ECHO = 1.0
TABLE_ECHO_LIMIT = 4096  # packets remembered at most


class FlowSetup:
    def __init__(self, ledger: Ledger, edge: Edge, flood: FloodGuard, quarantines: Quarantines) -> None:
        self.ledger = ledger
        self.edge = edge
        self.flood = flood
        self.quarantines = quarantines
        self._through_table: dict[tuple[int, int | None, bytes], float] = {}

    def ipv4(self, dpid: int, in_port: int, frame: Frame, data: bytes, src: Host, now: float) -> list[Message]:
        """An IPv4 packet from the authenticated host `src` at an edge port."""
        if self._came_back(dpid, in_port, data, now):
            return []
        verdict = decide(self.ledger, (dpid, in_port), frame, data, src)
        return self.apply(verdict, dpid, in_port, data, src, now)

    def transit(self, dpid: int, in_port: int, frame: Frame, data: bytes, now: float) -> list[Message]:
        """A packet that came in over a link: a packet of a just-allowed connection overtook its
        entries on a later switch (or a later fragment beat its connection's fragment entries)."""
        if self._came_back(dpid, in_port, data, now):
            return []
        verdict = decide_transit(self.ledger, frame)
        if isinstance(verdict, Transit):
            return self._transit(verdict, dpid, in_port, data, now)
        return []

    def apply(self, verdict: Verdict, dpid: int, in_port: int, data: bytes, src: Host, now: float) -> list[Message]:
        """What a verdict on a packet from `src` takes: the packet carried or delivered, a
        connection's entries, a cached denial, or an ARP to locate its destination."""
        ledger = self.ledger
        if isinstance(verdict, Transit):
            return self._transit(verdict, dpid, in_port, data, now)
        if isinstance(verdict, Ignore):
            return []
        if isinstance(verdict, Deliver):
            return [PacketOut(verdict.dpid, verdict.port, data)]
        if isinstance(verdict, Allow) and verdict.adopted:
            return self._adopt(verdict, dpid, in_port, data, now)
        key = verdict.key
        event = dict(src=src.name, src_mac=key.src_mac, dst_mac=key.dst_mac, **key.describe())
        if isinstance(verdict, Deny):
            if verdict.dst is not None:
                event["dst"] = verdict.dst
            return self._deny(dpid, in_port, key, now, event, verdict.reason)
        event["dst"] = verdict.dst.name
        if isinstance(verdict, Hold):  # (decided again, and recorded, when it is released)
            return self.edge.hold(verdict.dst, dpid, in_port, data, src, key.src_ip, key.dst_ip, now)
        if isinstance(verdict, Unreachable):
            ledger.events.record("deny", now, reason=f"no path to {verdict.dst.name}", enforced=True, **event)
            return []
        if verdict.would_deny:
            # Forwarded: its destination is monitored. Still a `deny` record (what enforce would do).
            ledger.events.record(
                "deny", now, verdict="monitor", reason=verdict.would_deny, enforced=False, would_deny=True, **event
            )
        connection = self._open(verdict, now, event)
        return [*plan_connection(connection), self._out(first_packet_out(connection, data), now)]

    # -- connections -------------------------------------------------------------------------
    def _open(self, allow: Allow, now: float, event: dict) -> Connection:
        ledger = self.ledger
        key = allow.key.service() if allow.stateful else allow.key
        connection = Connection(
            id=ledger.connections.new_id(),
            key=key,
            src=allow.src,
            dst=allow.dst,
            rule=allow.rule.name if allow.rule else None,
            path=allow.path,
            created=now,
            monitor_only=allow.would_deny is not None,
            reply_key=key.reverse(),
            stateful=allow.stateful,
        )
        connection.cookie = make_cookie(Kind.CONNECTION, ledger.host_id(allow.src.name), connection.id)
        ledger.connections.add(connection)
        if allow.rule is not None:
            if allow.stateful:  # its later connections are the switches' alone
                event["pipeline"] = "stateful"
            ledger.events.record(
                "allow", now, rule=allow.rule.name, switches=connection.switches, enforced=allow.enforced, **event
            )
        return connection

    def _adopt(self, allow: Allow, dpid: int, in_port: int, data: bytes, now: float) -> list[Message]:
        client, server = allow.src, allow.dst
        event = dict(src=client.name, dst=server.name, src_mac=client.mac, dst_mac=server.mac, **allow.key.describe())
        event["adopted"] = "reply seen first"
        connection = self._open(allow, now, event)
        back = reverse_hops(connection.path)[0]
        if connection.stateful:
            # The reply goes through the switch's tracker: on if it knows the connection (the
            # switch outlived the controller), else dropped, as a reply to nothing must be.
            return [*plan_connection(connection), self._out(PacketOut(dpid, TABLE_PORT, data, in_port), now)]
        return [*plan_connection(connection), PacketOut(dpid, back.out_port, data, in_port)]

    def _transit(self, verdict: Transit, dpid: int, in_port: int, data: bytes, now: float) -> list[Message]:
        """Send a packet of a live connection on from where it is, along its direction."""
        connection = verdict.connection
        hops = connection.hops(verdict.pair)
        messages: list[Message] = []
        if verdict.key is None:  # a later fragment: its direction gets fragment entries
            messages += plan_later_fragments(connection, verdict.pair)
        elif connection.stateful:
            # Its entries on this switch are missing (they idled out, or the packet overtook
            # them): back in place, then the packet goes through them, so that this switch's
            # tracker sees it. At the direction's ingress, the whole path's are put back.
            at_ingress = (hops[0].dpid, hops[0].in_port) == (dpid, in_port)
            entries = plan_connection(connection)
            messages += entries if at_ingress else [entry for entry in entries if entry.dpid == dpid]
            return [*messages, self._out(PacketOut(dpid, TABLE_PORT, data, in_port), now)]
        elif (hops[0].dpid, hops[0].in_port) == (dpid, in_port):
            # At the direction's own ingress: its entries are gone (a reply direction idles out
            # alone while the other stays busy). Put the connection back on the switches.
            messages += plan_connection(connection)
        return messages + _forward_along(hops, dpid, in_port, data)

    # -- packets sent back through a switch's table --------------------------------------------
    def _out(self, packet_out: PacketOut, now: float) -> PacketOut:
        """A packet-out; one through the switch's table is remembered for TABLE_ECHO seconds."""
        if packet_out.port == TABLE_PORT:
            sent = self._through_table
            if len(sent) >= TABLE_ECHO_LIMIT:
                for key in [key for key, until in sent.items() if until <= now]:
                    del sent[key]
                if len(sent) >= TABLE_ECHO_LIMIT:
                    sent.clear()
            sent[(packet_out.dpid, packet_out.in_port, packet_out.data)] = now + TABLE_ECHO
        return packet_out

    def _came_back(self, dpid: int, in_port: int, data: bytes, now: float) -> bool:
        """Whether this packet is one segctl just sent through the switch's table from this
        port, back because no entry took it (see TABLE_ECHO)."""
        if not self._through_table:
            return False
        until = self._through_table.pop((dpid, in_port, data), None)
        return until is not None and now < until

    # -- denials -----------------------------------------------------------------------------
    def _deny(self, dpid: int, in_port: int, key: FlowKey, now: float, event: dict, reason: str) -> list[Message]:
        ledger = self.ledger
        ledger.events.record("deny", now, reason=reason, enforced=True, **event)
        messages: list[Message] = [plan_deny(dpid, in_port, key)]
        messages += self.flood.charge_denial(dpid, in_port, now)
        if ledger.scans is not None and ledger.scans.record_denial(key.src_mac, now):
            p = ledger.protection
            why = f"scan detector: {p.scan_denied} denied connections within {p.scan_seconds:g} s"
            messages += [SAVE_STATE] + self.quarantines.quarantine(key.src_mac, why, now, by="scan-detector")
        return messages

    # -- expiry ------------------------------------------------------------------------------
    def flow_removed(
        self, dpid: int, cookie: int, now: float, reason: str = "idle_timeout", counts: tuple[int, int] | None = None
    ) -> list[Message]:
        """A connection's ingress entry timed out: the connection ended; delete the rest of it.
        `reason` is OpenFlow's: only a timeout ends a connection. A delete is segctl's own, of a
        connection it had already forgotten (possibly in a previous run, whose connection ids
        a new one may reuse), and says nothing about the connections it knows now."""
        if reason not in ("idle_timeout", "hard_timeout"):
            return []
        parsed = parse_cookie(cookie)
        if parsed is None or parsed[0] not in (Kind.CONNECTION, Kind.SERVICE):
            return []
        ledger = self.ledger
        connection = ledger.connections.by_id.get(parsed[2])
        if connection is None or (connection.cookie ^ cookie) & CONNECTION_MASK or connection.path[0].dpid != dpid:
            return []
        ledger.connections.remove(connection.id)
        event = dict(src=connection.src.name, dst=connection.dst.name, **connection.key.describe())
        if counts is not None:  # what its opening direction carried at its first switch
            event.update(packets=counts[0], bytes=counts[1])
        if connection.stateful:
            event["pipeline"] = "stateful"
        ledger.events.record("expire", now, **event)
        return list(plan_revoke(connection))


def _forward_along(hops, dpid: int, in_port: int, data: bytes) -> list[Message]:
    for hop in hops:
        if hop.dpid == dpid and hop.in_port == in_port:
            return [PacketOut(dpid, hop.out_port, data, in_port)]
    return []
