"""A fake OpenFlow 1.3 fabric that applies segctl's plain messages the way the spec says, so
tests can ask where a packet would go instead of comparing flow bytes."""

from __future__ import annotations

from segctl.core.flows import Barrier, FlowAdd, FlowDelete, PacketOut


def _field_matches(packet_value, entry_value) -> bool:
    """An exact field, or a (value, mask) pair as OpenFlow masks it."""
    if isinstance(entry_value, tuple):
        value, mask = entry_value
        return packet_value is not None and packet_value & mask == value
    return packet_value == entry_value


class FakeTable:
    def __init__(self) -> None:
        self.entries: list[FlowAdd] = []

    def apply(self, message) -> None:
        if isinstance(message, FlowAdd):
            # An add with the same match and priority replaces the existing entry.
            self.entries = [
                e for e in self.entries if not (e.priority == message.priority and e.match == message.match)
            ]
            self.entries.append(message)
        elif isinstance(message, FlowDelete):
            wanted = message.match_dict()
            self.entries = [
                e
                for e in self.entries
                if not (
                    (e.cookie & message.cookie_mask) == (message.cookie & message.cookie_mask)
                    and all(e.match_dict().get(k) == v for k, v in wanted.items())
                )
            ]

    def lookup(self, fields: dict) -> FlowAdd | None:
        best = None
        for entry in self.entries:
            matches = all(_field_matches(fields.get(k), v) for k, v in entry.match)
            if matches and (best is None or entry.priority > best.priority):
                best = entry
        return best


class FakeFabric:
    def __init__(self, links=()) -> None:
        self.tables: dict[int, FakeTable] = {}
        self.links: dict[tuple[int, int], tuple[int, int]] = {}
        self.packet_outs: list[PacketOut] = []
        self.barriers: list[int] = []
        for a, a_port, b, b_port in links:
            self.links[(a, a_port)] = (b, b_port)
            self.links[(b, b_port)] = (a, a_port)

    def apply(self, messages) -> list:
        for message in messages:
            if isinstance(message, PacketOut):
                self.packet_outs.append(message)
            elif isinstance(message, Barrier):
                self.barriers.append(message.dpid)
            else:
                self.tables.setdefault(message.dpid, FakeTable()).apply(message)
        return messages

    def entries(self, dpid: int | None = None) -> list[FlowAdd]:
        tables = self.tables.values() if dpid is None else [self.tables.get(dpid, FakeTable())]
        return [e for t in tables for e in t.entries]

    def trace(self, dpid: int, in_port: int, fields: dict, max_hops: int = 16) -> tuple:
        """Follow a packet from (dpid, in_port): ("out", dpid, port) when it leaves the fabric,
        ("controller", dpid) or ("drop", dpid)."""
        for _ in range(max_hops):
            entry = self.tables.get(dpid, FakeTable()).lookup(dict(fields, in_port=in_port))
            if entry is None or not entry.actions:
                return ("drop", dpid)
            action = entry.actions[0]
            if action[0] == "controller":
                return ("controller", dpid)
            port = action[1]
            if (dpid, port) not in self.links:
                return ("out", dpid, port)
            dpid, in_port = self.links[(dpid, port)]
        return ("loop", dpid)
