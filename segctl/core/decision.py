"""The policy compiled to a decision index whose cost does not grow with the number of rules.

Each rule is one bit. A host's label set is turned, once, into two bitsets: the rules whose
`from` it matches and the rules whose `to` it matches. Each protocol has a sorted table of
port intervals, each with the bitset of rules that accept those ports. A first decision is then
a dictionary look-up for the pair of label sets (no rule between them: done), one bisect and one
big-integer AND; the lowest set bit is the first matching rule in file order. Decisions are
remembered per (label sets, protocol, port), so a repeated one is a single look-up.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

from .policy import Policy, Rule, merge_ranges

ALLOW, MONITOR, DENY = "allow", "monitor", "deny"  # a flow's outcome (Outcome.kind)
PAIR_CACHE_LIMIT = 200_000  # (source label set, destination label set) pairs remembered
DECISION_CACHE_LIMIT = 200_000  # (pair, proto, port) decisions remembered


@dataclass(frozen=True)
class Verdict:
    """The outcome of one decision: `rule` is None when nothing allows the flow."""

    allowed: bool
    rule: Rule | None
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the policy does with a connection between two directory hosts: `allow` (by `rule`),
    `monitor` (no rule allows it, but its destination is monitored: forwarded and logged as
    would-deny) or `deny`. `mode` is the destination's mode."""

    kind: str
    rule: Rule | None
    mode: str

    @property
    def forwarded(self) -> bool:
        return self.kind != DENY


class _PortTable:
    """Maps a destination port to the bitset of rules that accept it (a sweep over intervals)."""

    def __init__(self, ranges_by_rule: list):
        events: dict[int, int] = {}
        for bit, ranges in ranges_by_rule:
            for low, high in merge_ranges(ranges):
                events[low] = events.get(low, 0) ^ bit
                events[high + 1] = events.get(high + 1, 0) ^ bit
        self.starts: list[int] = [0]
        self.bits: list[int] = [0]
        current = 0
        for point in sorted(events):
            current ^= events[point]
            if point == self.starts[-1]:
                self.bits[-1] = current
            else:
                self.starts.append(point)
                self.bits.append(current)

    def lookup(self, port: int) -> int:
        return self.bits[bisect.bisect_right(self.starts, port) - 1]


class DecisionIndex:
    """Answers "does the policy allow this flow, and by which rule?" in constant time."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.rules = policy.rules
        self._src_selectors: dict = {}
        self._dst_selectors: dict = {}
        for rule in policy.rules:
            bit = 1 << rule.index
            self._src_selectors[rule.src] = self._src_selectors.get(rule.src, 0) | bit
            self._dst_selectors[rule.dst] = self._dst_selectors.get(rule.dst, 0) | bit
        every_port = ((0, 65535),)
        # Destination ports for tcp and udp, types for icmp: each a table of intervals.
        self._ports = {}
        for proto in ("tcp", "udp", "icmp"):
            self._ports[proto] = _PortTable(
                [
                    (1 << r.index, r.service_ranges(proto) or every_port)
                    for r in policy.rules
                    if r.proto in (proto, "any")
                ]
            )
        self._no_port_bits = {"other": sum(1 << r.index for r in policy.rules if r.proto == "any")}
        self._label_cache: dict = {}
        self._pair_cache: dict = {}
        # Each (label sets, service) decision is made from the bitsets once and then remembered,
        # as Ethane cached its decisions: the same service between the same groups recurs.
        self._decisions: dict = {}
        self._group_modes = policy.group_modes()
        self._modes: dict = {}

    def host_bits(self, labels: Mapping[str, str]) -> tuple[int, int]:
        """(rules this label set may send by, rules it may receive by), computed once per set."""
        return self._bits_of(frozenset(labels.items()))

    def _bits_of(self, key: frozenset) -> tuple[int, int]:
        bits = self._label_cache.get(key)
        if bits is None:
            src = 0
            for selector, rule_bits in self._src_selectors.items():
                if selector.pairs <= key:
                    src |= rule_bits
            dst = 0
            for selector, rule_bits in self._dst_selectors.items():
                if selector.pairs <= key:
                    dst |= rule_bits
            bits = (src, dst)
            self._label_cache[key] = bits
        return bits

    def service_bits(self, proto: str, port: int | None) -> int:
        table = self._ports.get(proto)
        if table is not None:
            return table.lookup(port) if port is not None else 0
        return self._no_port_bits.get(proto, self._no_port_bits["other"])

    def first_rule(
        self, src_labels: Mapping[str, str], dst_labels: Mapping[str, str], proto: str, port: int | None
    ) -> Rule | None:
        """The first rule in file order that allows the flow, or None. `proto` is tcp, udp,
        icmp or other; `port` is the destination port for tcp/udp, the type for icmp."""
        pair = (frozenset(src_labels.items()), frozenset(dst_labels.items()))
        decision_key = (pair, proto, port)
        if decision_key in self._decisions:
            return self._decisions[decision_key]
        if len(self._decisions) >= DECISION_CACHE_LIMIT:
            self._decisions.clear()
        rule = self._decisions[decision_key] = self._first_rule(pair, proto, port)
        return rule

    def _first_rule(self, pair: tuple, proto: str, port: int | None) -> Rule | None:
        between = self._pair_cache.get(pair)
        if between is None:
            # Most pairs of label sets have no rule between them at all; remembering that per
            # pair answers them without touching a rule-wide bitset.
            if len(self._pair_cache) >= PAIR_CACHE_LIMIT:
                self._pair_cache.clear()
            between = self._pair_cache[pair] = self._bits_of(pair[0])[0] & self._bits_of(pair[1])[1]
        if not between:
            return None
        matching = between & self.service_bits(proto, port)
        if not matching:
            return None
        return self.rules[(matching & -matching).bit_length() - 1]

    def mode_of(self, dst_labels: Mapping[str, str]) -> str:
        """The mode of connections to a host with these labels: the modes of the groups it is
        in (enforce wins over monitor), else the policy's `mode`. Remembered per label set."""
        if not self._group_modes:
            return self.policy.mode
        key = frozenset(dst_labels.items())
        mode = self._modes.get(key)
        if mode is None:
            found = {mode for selector, mode in self._group_modes if selector.pairs <= key}
            mode = "enforce" if "enforce" in found else ("monitor" if found else self.policy.mode)
            if len(self._modes) >= PAIR_CACHE_LIMIT:
                self._modes.clear()
            self._modes[key] = mode
        return mode

    def outcome(
        self, src_labels: Mapping[str, str], dst_labels: Mapping[str, str], proto: str, port: int | None
    ) -> Outcome:
        """What happens to a connection between two directory hosts, rule and mode together."""
        rule = self.first_rule(src_labels, dst_labels, proto, port)
        mode = self.mode_of(dst_labels)
        if rule is not None:
            return Outcome(ALLOW, rule, mode)
        return Outcome(MONITOR if mode == "monitor" else DENY, None, mode)

    def peers(self, src_labels: Mapping[str, str], dst_labels: Mapping[str, str]) -> list[Rule]:
        """Every rule from src to dst, whatever the service (for ARP and for explanations)."""
        matching = self.host_bits(src_labels)[0] & self.host_bits(dst_labels)[1]
        rules = []
        while matching:
            low = matching & -matching
            rules.append(self.rules[low.bit_length() - 1])
            matching ^= low
        return rules

    def may_talk(self, a_labels: Mapping[str, str], b_labels: Mapping[str, str]) -> bool:
        """True when some rule lets a reach b or b reach a: they may resolve each other by ARP."""
        a_src, a_dst = self.host_bits(a_labels)
        b_src, b_dst = self.host_bits(b_labels)
        return bool((a_src & b_dst) | (b_src & a_dst))

    def explain(self, src_labels, dst_labels, proto: str, port: int | None) -> Verdict:
        rule = self.first_rule(src_labels, dst_labels, proto, port)
        if rule is not None:
            return Verdict(True, rule, f"rule {rule.describe()}")
        service = proto if port is None else (f"icmp type {port}" if proto == "icmp" else f"{proto}/{port}")
        near = self.peers(src_labels, dst_labels)
        if not near:
            return Verdict(False, None, "default deny: no rule lets the source's group reach the destination's group")
        listed = "; ".join(rule.describe() for rule in near)
        return Verdict(
            False,
            None,
            f"default deny: no rule allows {service}; rules between these hosts allow only: {listed}",
        )
