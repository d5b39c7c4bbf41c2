"""Blast radius: the hosts a host may open connections to under the policy, then what those may
reach in turn, hop by hop (or, reversed, who may reach it). Policy reach, not liveness.

Hosts of one label set reach, and are reached by, the same hosts, so the walk runs over label
sets: each rule knows, once, the label sets its `from` and its `to` match (from the compiled
index's bitsets), and a walk expands each rule at most once. Its cost follows rules and label
sets, not hosts × hosts; hosts are only listed at the end.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from .decision import DecisionIndex
from .directory import Directory, Host
from .policy import Rule

MAX_HOPS = 10


@dataclass(frozen=True, slots=True)
class Reached:
    """A host `hop` connections away. `via`: the host one hop nearer (at hop 1, the asked host)
    that it is reached from, or, walking backwards, that it reaches. `rules`: the rules, in file
    order, that let the source of that connection open it. `monitored`: the connection's
    destination is in monitor mode, which forwards every service whatever the rules say."""

    host: Host
    hop: int
    via: Host
    rules: tuple[Rule, ...]
    monitored: bool


@dataclass(frozen=True, slots=True)
class Reach:
    """The answer for `host`: `reverse` False for what it may reach, True for who may reach it.
    A quarantined host reaches nothing and nothing reaches it: `quarantined`, `reached` empty."""

    host: Host
    reverse: bool
    hops: int
    quarantined: bool
    reached: tuple[Reached, ...]


@dataclass(frozen=True, slots=True)
class _LabelSet:
    hosts: tuple[Host, ...]  # sorted by name
    send: int  # bitset of the rules whose `from` matches
    receive: int  # bitset of the rules whose `to` matches
    monitored: bool


def _bits(bitset: int) -> Iterator[int]:
    while bitset:
        low = bitset & -bitset
        yield low.bit_length() - 1
        bitset ^= low


class ReachMap:
    """The directory's hosts grouped by label set against one policy and one quarantine;
    `reach()` answers for any host of it. Built once per directory, policy and quarantine."""

    def __init__(self, directory: Directory, index: DecisionIndex, quarantined: Collection[str]):
        self.directory = directory
        self.index = index
        self.quarantined = frozenset(quarantined)
        grouped: dict[frozenset, list[Host]] = {}
        for host in directory:
            if host.name not in self.quarantined:
                grouped.setdefault(frozenset(host.labels.items()), []).append(host)
        sets = []
        for hosts in grouped.values():
            hosts.sort(key=lambda host: host.name)
            send, receive = index.host_bits(hosts[0].labels)
            sets.append(_LabelSet(tuple(hosts), send, receive, index.mode_of(hosts[0].labels) == "monitor"))
        # Ordered by their first host's name: the walk, and so every answer, is deterministic.
        self.sets: list[_LabelSet] = sorted(sets, key=lambda s: s.hosts[0].name)
        self.position = {host.name: at for at, s in enumerate(self.sets) for host in s.hosts}
        # Rule index -> positions of the label sets it lets send, and those it lets receive.
        self.senders: list[list[int]] = [[] for _ in index.rules]
        self.receivers: list[list[int]] = [[] for _ in index.rules]
        for at, label_set in enumerate(self.sets):
            for rule in _bits(label_set.send):
                self.senders[rule].append(at)
            for rule in _bits(label_set.receive):
                self.receivers[rule].append(at)
        self.monitored = [at for at, label_set in enumerate(self.sets) if label_set.monitored]

    def reach(self, host: Host, hops: int = 1, reverse: bool = False) -> Reach:
        """What `host` may open connections to, up to `hops` connections away (1 to MAX_HOPS);
        with `reverse`, who may open connections to it. Raises ValueError for a bad `hops`."""
        if isinstance(hops, bool) or not isinstance(hops, int) or not 1 <= hops <= MAX_HOPS:
            raise ValueError(f"hops must be a whole number from 1 to {MAX_HOPS}, not {hops!r}")
        if host.name in self.quarantined or host.name not in self.position:
            return Reach(host, reverse, hops, host.name in self.quarantined, ())
        start = self.position[host.name]
        found: dict[int, tuple[int, Host]] = {}  # label set -> (hop, via)
        frontier = [(start, host)]
        other_side = self.senders if reverse else self.receivers
        expanded = 0  # bitset of the rules whose other side has been added
        monitor_expanded = False
        for hop in range(1, hops + 1):
            reached_now: list[int] = []
            for at, via in frontier:
                label_set = self.sets[at]
                fresh = (label_set.receive if reverse else label_set.send) & ~expanded
                expanded |= fresh
                candidates = [target for rule in _bits(fresh) for target in other_side[rule]]
                # A monitored destination forwards whatever any directory host sends it.
                if not monitor_expanded and (label_set.monitored or not reverse):
                    monitor_expanded = True
                    candidates += range(len(self.sets)) if reverse else self.monitored
                for target in candidates:
                    if target not in found:
                        found[target] = (hop, via)
                        reached_now.append(target)
            frontier = []
            for at in sorted(reached_now):
                others = [other for other in self.sets[at].hosts if other.name != host.name]
                if others:
                    frontier.append((at, others[0]))
            if not frontier:
                break
        return Reach(host, reverse, hops, False, tuple(self._listed(host, found, reverse)))

    def _listed(self, host: Host, found: dict[int, tuple[int, Host]], reverse: bool) -> list[Reached]:
        listed = []
        for at, (hop, via) in found.items():
            target, near = self.sets[at], self.sets[self.position[via.name]]
            source, destination = (target, near) if reverse else (near, target)
            rules = tuple(self.index.rules[bit] for bit in _bits(source.send & destination.receive))
            for other in target.hosts:
                if other.name != host.name:
                    listed.append(Reached(other, hop, via, rules, destination.monitored))
        listed.sort(key=lambda reached: (reached.hop, reached.host.name))
        return listed
