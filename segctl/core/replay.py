"""What-if replay: every recorded flow decided again under the running policy and under a draft.

Each `FlowEdge` stands for `flows` recorded flows between two hosts on one service. A flow is
*newly denied* when the running policy forwards it and the draft would not (the draft would
break it), *newly allowed* the other way round, *unchanged* otherwise; draft outcomes that only
a monitored destination lets through are also tallied as *would deny once enforced*. Without a
running policy (offline, from a store file) the recorded verdict stands in for it.

Decisions are made once per (source label set, destination label set, protocol, service), so
the cost follows the distinct label-set pairs, not the number of edges.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .decision import MONITOR, DecisionIndex, Outcome
from .flowlog import MONITORED, FlowEdge, LabelsNow, labels_of

NEWLY_DENIED, NEWLY_ALLOWED, UNCHANGED, MONITORED_ONLY = (
    "newly_denied",
    "newly_allowed",
    "unchanged",
    "would_deny_once_enforced",
)
CATEGORIES = (NEWLY_DENIED, NEWLY_ALLOWED, UNCHANGED, MONITORED_ONLY)
BY_MONITOR = "no rule: monitor mode"  # forwarded only because the destination is monitored
BY_DEFAULT_DENY = "no rule: default deny"
BREAKS_EXIT_STATUS = 3  # `segctl replay`: some flow forwarded now would be denied by the draft
DEFAULT_TOP = 10

Service = tuple[str, str, str, int]  # (src, dst, proto, port)


@dataclass(frozen=True, slots=True)
class Decided:
    """One side's decision of a flow: forwarded or not, and what decided (a rule's name or
    one of BY_MONITOR / BY_DEFAULT_DENY)."""

    forwarded: bool
    by: str
    monitored: bool = False


def decided(outcome: Outcome) -> Decided:
    if outcome.rule is not None:
        return Decided(True, outcome.rule.name)
    if outcome.kind == MONITOR:
        return Decided(True, BY_MONITOR, monitored=True)
    return Decided(False, BY_DEFAULT_DENY)


def recorded(edge: FlowEdge) -> Decided:
    """The running policy's decision as the store recorded it (the offline baseline)."""
    if edge.verdict == MONITORED:
        return Decided(True, BY_MONITOR, monitored=True)
    if edge.forwarded:
        return Decided(True, edge.rule or BY_MONITOR)
    return Decided(False, edge.rule or BY_DEFAULT_DENY)


@dataclass
class Tally:
    """Flows of one category (and of one rule within it): sums, distinct host pairs, and the
    flows per (src, dst, proto, port) from which the top pairs are picked."""

    flows: int = 0
    pairs: set = field(default_factory=set)
    services: dict = field(default_factory=dict)

    def add(self, service: Service, flows: int) -> None:
        self.flows += flows
        self.pairs.add(service[:2])
        self.services[service] = self.services.get(service, 0) + flows

    def top(self, count: int) -> list[dict]:
        best = heapq.nlargest(count, self.services.items(), key=lambda item: (item[1], item[0]))
        return [
            {"src": src, "dst": dst, "proto": proto, "port": port, "flows": flows}
            for (src, dst, proto, port), flows in best
        ]

    def to_json(self, count: int) -> dict:
        return {"flows": self.flows, "pairs": len(self.pairs), "top": self.top(count)}


@dataclass
class Category:
    total: Tally = field(default_factory=Tally)
    by_rule: dict[str, Tally] = field(default_factory=dict)

    def add(self, rule: str, service: Service, flows: int) -> None:
        self.total.add(service, flows)
        tally = self.by_rule.get(rule)
        if tally is None:
            tally = self.by_rule[rule] = Tally()
        tally.add(service, flows)

    def to_json(self, count: int) -> dict:
        rules = sorted(self.by_rule.items(), key=lambda item: (-item[1].flows, item[0]))
        return dict(self.total.to_json(count), by_rule=[dict(rule=name, **t.to_json(count)) for name, t in rules])


@dataclass
class ReplayReport:
    categories: dict[str, Category] = field(default_factory=lambda: {name: Category() for name in CATEGORIES})
    replayed_flows: int = 0
    replayed_pairs: set = field(default_factory=set)
    not_replayed_flows: int = 0
    not_replayed_edges: int = 0
    decisions: int = 0  # distinct (label sets, service) decided: what the replay's cost follows

    @property
    def newly_denied(self) -> int:
        return self.categories[NEWLY_DENIED].total.flows

    def exit_status(self) -> int:
        """0 when no flow forwarded now would be denied by the draft, else BREAKS_EXIT_STATUS."""
        return BREAKS_EXIT_STATUS if self.newly_denied else 0

    def to_json(self, top: int = DEFAULT_TOP) -> dict:
        return {
            "replayed": {"flows": self.replayed_flows, "pairs": len(self.replayed_pairs)},
            "not_replayed": {"flows": self.not_replayed_flows, "edges": self.not_replayed_edges},
            "decisions": self.decisions,
            **{name: category.to_json(top) for name, category in self.categories.items()},
            "breaks": self.newly_denied > 0,
        }


def category_of(running: Decided, draft: Decided) -> tuple[str, str]:
    """(category, the rule it is filed under): the running rule for what the draft would
    break, the draft's for everything else."""
    if running.forwarded and not draft.forwarded:
        return NEWLY_DENIED, running.by
    if draft.forwarded and not running.forwarded:
        return NEWLY_ALLOWED, draft.by
    return UNCHANGED, draft.by


class _LabelSets:
    """Each host's label set (current directory labels first), frozen once per host name."""

    def __init__(self, directory_labels: LabelsNow | None):
        self.directory_labels = directory_labels
        self.by_name: dict[str, frozenset | None] = {}

    def of(self, edge: FlowEdge, side: str) -> frozenset | None:
        name = edge.src if side == "src" else edge.dst
        found = self.by_name.get(name, False)
        if found is not False:
            return found  # type: ignore[return-value]
        labels = labels_of(edge, side, self.directory_labels)
        frozen = frozenset(labels.items()) if labels is not None else None
        if self.directory_labels is not None and self.directory_labels(name) is not None:
            self.by_name[name] = frozen  # recorded labels may differ edge by edge; these do not
        return frozen


def replay(
    edges: Iterable[FlowEdge],
    draft: DecisionIndex,
    running: DecisionIndex | None = None,
    directory_labels: LabelsNow | None = None,
) -> ReplayReport:
    """Every edge between two hosts with labels, decided under `running` (None: as recorded)
    and under `draft`. Edges with an end outside the directory, or without a service, are
    counted as not replayed: no policy decides them."""
    report = ReplayReport()
    label_sets = _LabelSets(directory_labels)
    memo: dict[tuple, tuple[Decided | None, Decided]] = {}
    for edge in edges:
        src = label_sets.of(edge, "src") if edge.between_hosts else None
        dst = label_sets.of(edge, "dst") if src is not None else None
        if src is None or dst is None or edge.port is None:
            report.not_replayed_flows += edge.flows
            report.not_replayed_edges += 1
            continue
        key = (src, dst, edge.proto, edge.port)
        both = memo.get(key)
        if both is None:
            both = memo[key] = _decide(key, draft, running)
        now, would = both
        service = (edge.src, edge.dst, edge.proto, edge.port)
        category, rule = category_of(now if now is not None else recorded(edge), would)
        report.categories[category].add(rule, service, edge.flows)
        if would.monitored:
            report.categories[MONITORED_ONLY].add(would.by, service, edge.flows)
        report.replayed_flows += edge.flows
        report.replayed_pairs.add((edge.src, edge.dst))
    report.decisions = len(memo)
    return report


def _decide(key: tuple, draft: DecisionIndex, running: DecisionIndex | None) -> tuple[Decided | None, Decided]:
    src_set, dst_set, proto, port = key
    src: Mapping[str, str] = dict(src_set)
    dst: Mapping[str, str] = dict(dst_set)
    now = decided(running.outcome(src, dst, proto, port)) if running is not None else None
    return now, decided(draft.outcome(src, dst, proto, port))
