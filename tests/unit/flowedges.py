"""FlowEdges as the flow store hands them over, for the tests of what reads them (the map, the
suggestion, the replay, the blast radius), and `recorded_store`, which writes them into a real
flow store for the tests that read them through it (the API, the command line)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from segctl.core.flowlog import ALLOWED, DENIED, FlowEdge, Observation
from segctl.flowstore import FlowStore

# The store's windows end at the wall clock: an edge of these tests was seen ten minutes before
# they started, inside every window they ask for (the shortest is 2 h).
RECENT = time.time() - 600.0
HOUR, DAY = 3600.0, 86400.0


def flow_edge(
    src: str,
    dst: str,
    port: int | None,
    proto: str = "tcp",
    verdict: str = ALLOWED,
    flows: int = 1,
    src_labels: Mapping[str, str] | None = None,
    dst_labels: Mapping[str, str] | None = None,
    first: float = RECENT,
    last: float = RECENT,
) -> FlowEdge:
    """An edge; a side without labels is a host not in the directory (known by its MAC)."""
    return FlowEdge(
        src,
        src_labels is not None,
        dst,
        dst_labels is not None,
        proto,
        port,
        verdict,
        None,
        flows,
        first,
        last,
        src_labels,
        dst_labels,
    )


SHIPPED_LABELS = {
    "web1": {"role": "web", "app": "shop", "env": "prod"},
    "app1": {"role": "app", "app": "shop", "env": "prod"},
    "db1": {"role": "db", "app": "shop", "env": "prod"},
    "jump1": {"role": "jump", "dept": "it"},
    "mon1": {"role": "monitoring", "dept": "it"},
}


def edge(src, dst, port, flows=1, verdict=ALLOWED, rule=None, proto="tcp", known=True, labels=SHIPPED_LABELS):
    """`flows` recorded flows from src to dst on proto/port, with the labels they had then."""
    return FlowEdge(
        src=src,
        src_known=known,
        dst=dst,
        dst_known=known,
        proto=proto,
        port=port,
        verdict=verdict,
        rule=rule,
        flows=flows,
        first_seen=RECENT - (60.0 if flows > 1 else 0.0),  # one flow: one time
        last_seen=RECENT,
        src_labels=labels.get(src) if known else None,
        dst_labels=labels.get(dst) if known else None,
    )


# What the shipped policy allows (web-to-app, app-to-db, admin-ssh) and one flow it denies.
SHIPPED_EDGES = [
    edge("web1", "app1", 8080, flows=40, rule="web-to-app"),
    edge("app1", "db1", 5432, flows=25, rule="app-to-db"),
    edge("jump1", "db1", 22, flows=3, rule="admin-ssh"),
    edge("web1", "db1", 5432, flows=2, verdict=DENIED),
]


def observations_of(edge: FlowEdge) -> list[Observation]:
    """The decisions an edge sums: all of them at once, or, when it was first seen before it was
    last seen, one at each end (the rest at the last) so that both times are stored."""

    def seen(when: float, count: int) -> Observation:
        return Observation(
            time=when,
            src=edge.src,
            src_known=edge.src_known,
            dst=edge.dst,
            dst_known=edge.dst_known,
            proto=edge.proto,
            port=edge.port,
            verdict=edge.verdict,
            rule=edge.rule,
            reason=None,
            count=count,
        )

    if edge.first_seen == edge.last_seen:
        return [seen(edge.last_seen, edge.flows)]
    if edge.flows < 2 or edge.first_seen > edge.last_seen:
        raise ValueError(f"{edge}: seen at two times, so it needs two flows or more, the first one first")
    return [seen(edge.first_seen, 1), seen(edge.last_seen, edge.flows - 1)]


def recorded_store(path: str, edges: Iterable[FlowEdge]) -> FlowStore:
    """A real flow store at `path` holding `edges`, each recorded with the labels it carries (as
    the controller's directory gave them then), and the store, open for writing. Reading it back
    (FlowStore.edges) sums edges that differ only in their labels, and keeps the newest labels."""
    store = FlowStore(path)
    for edge in edges:  # one batch each: a host's labels may differ from one edge to the next
        labels = {edge.src: edge.src_labels, edge.dst: edge.dst_labels}
        store.record(observations_of(edge), labels.get)
    return store
