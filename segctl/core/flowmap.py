"""The flow map: recorded flows drawn between groups of hosts (pure).

A node is the set of directory hosts sharing the values of the chosen label keys (`by`); a host
that is not in the directory is a node of its own. An edge is one service (protocol and port)
from one node to another, with what was observed and what the current policy does with it:
each distinct host pair is asked once (DecisionIndex.outcome) and the answers are counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .decision import ALLOW, DENY, MONITOR, DecisionIndex
from .flowlog import SERVICE_PROTOCOLS, VERDICTS, FlowEdge, LabelsNow, labels_of

OUTCOMES = (ALLOW, MONITOR, DENY)
MIXED = "mixed"
NO_DESTINATION = "(no destination)"  # a sender refused before any destination was looked at
DEFAULT_BY = ("role",)
BLANK = " \t"  # what is trimmed around a key or value the user wrote (as the API's schema says)


def parse_by(text: str) -> tuple[str, ...]:
    """`role` or `role,app` as label keys, each once (blank ones skipped); ValueError if none."""
    keys = [key.strip(BLANK) for key in text.split(",") if key.strip(BLANK)]
    if not keys:
        raise ValueError(f"{text!r} is not a list of label keys like role or role,app")
    return tuple(dict.fromkeys(keys))


def utc_text(stamp: float) -> str:
    """A time as engineers compare them across sites: ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A node's key: ("group", ((key, value or None), ...)) for directory hosts, ("host", name) else.
NodeKey = tuple


@dataclass
class MapNode:
    key: NodeKey
    hosts: set[str] = field(default_factory=set)

    @property
    def known(self) -> bool:
        return self.key[0] == "group"

    @property
    def label(self) -> str:
        if not self.known:
            return self.key[1] or NO_DESTINATION
        return ",".join(f"{name}={'-' if value is None else value}" for name, value in self.key[1])


@dataclass
class MapEdge:
    src: NodeKey
    dst: NodeKey
    proto: str
    port: int | None
    flows: int = 0
    first_seen: float = float("inf")
    last_seen: float = float("-inf")
    observed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    # Host pair -> what the policy does with it (None: no policy to ask).
    pairs: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def policy(self) -> dict | None:
        """Host pairs per outcome and the edge's status: the one outcome, or `mixed`."""
        if any(kind is None for kind in self.pairs.values()):
            return None
        counts = {kind: sum(1 for got in self.pairs.values() if got == kind) for kind in OUTCOMES}
        present = [kind for kind in OUTCOMES if counts[kind]]
        return dict(counts, status=present[0] if len(present) == 1 else MIXED)


def _node_key(edge: FlowEdge, side: str, by: Sequence[str], labels_now: LabelsNow | None) -> NodeKey:
    labels = labels_of(edge, side, labels_now)
    known = edge.src_known if side == "src" else edge.dst_known
    name = edge.src if side == "src" else edge.dst
    if not known or labels is None:
        return ("host", name)
    return ("group", tuple((key, labels.get(key)) for key in by))


def _outcome(edge: FlowEdge, index: DecisionIndex | None, labels_now: LabelsNow | None, proto: str) -> str | None:
    if index is None:
        return None
    src, dst = labels_of(edge, "src", labels_now), labels_of(edge, "dst", labels_now)
    if not (edge.src_known and edge.dst_known) or src is None or dst is None:
        return DENY  # a host not in the directory gets nothing forwarded, whatever the rules
    return index.outcome(src, dst, proto, edge.port).kind


@dataclass
class FlowMap:
    by: tuple[str, ...]
    nodes: dict[NodeKey, MapNode]
    edges: list[MapEdge]

    def to_json(self) -> dict:
        """The API's answer (and `segctl map --json`): nodes named n1, n2... in sorted order."""
        ordered = sorted(self.nodes.values(), key=lambda node: (not node.known, node.label, repr(node.key)))
        ids = {node.key: f"n{number}" for number, node in enumerate(ordered, 1)}
        rank = {node.key: number for number, node in enumerate(ordered)}
        nodes = [
            {
                "id": ids[node.key],
                "label": node.label,
                "known": node.known,
                "labels": dict(node.key[1]) if node.known else None,
                "hosts": sorted(node.hosts),
            }
            for node in ordered
        ]
        ordered_edges = sorted(
            self.edges, key=lambda e: (rank[e.src], rank[e.dst], e.proto, e.port is None, e.port or 0)
        )
        edges = [
            {
                "src": ids[edge.src],
                "dst": ids[edge.dst],
                "proto": edge.proto,
                "port": edge.port,
                "flows": edge.flows,
                "pairs": len(edge.pairs),
                "first_seen": edge.first_seen,
                "last_seen": edge.last_seen,
                "observed": dict(edge.observed),
                "policy": edge.policy(),
            }
            for edge in ordered_edges
        ]
        return {"by": list(self.by), "nodes": nodes, "edges": edges}


def build_map(
    edges: Iterable[FlowEdge],
    by: Sequence[str],
    index: DecisionIndex | None = None,
    labels_now: LabelsNow | None = None,
    verdict: str | None = None,
) -> FlowMap:
    """The map of `edges` (those with `verdict` only, when given) grouped by the label keys `by`,
    each edge's policy status from `index` (none without one). Labels: the directory's now
    (`labels_now`), else as recorded."""
    nodes: dict[NodeKey, MapNode] = {}
    found: dict[tuple, MapEdge] = {}
    for edge in edges:
        if verdict is not None and edge.verdict != verdict:
            continue
        ends = []
        for side, name in (("src", edge.src), ("dst", edge.dst)):
            key = _node_key(edge, side, by, labels_now)
            nodes.setdefault(key, MapNode(key)).hosts.add(name or NO_DESTINATION)
            ends.append(key)
        proto = edge.proto if edge.proto in SERVICE_PROTOCOLS else "other"
        service = found.setdefault((*ends, proto, edge.port), MapEdge(ends[0], ends[1], proto, edge.port))
        service.flows += edge.flows
        service.first_seen = min(service.first_seen, edge.first_seen)
        service.last_seen = max(service.last_seen, edge.last_seen)
        service.observed[edge.verdict] = service.observed.get(edge.verdict, 0) + edge.flows
        pair = (edge.src, edge.dst)
        if pair not in service.pairs:
            service.pairs[pair] = _outcome(edge, index, labels_now, proto)
    return FlowMap(tuple(by), nodes, list(found.values()))
