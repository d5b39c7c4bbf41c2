"""FlowEdges as the flow store hands them over, for the tests of what reads them (the map, the
suggestion, the replay)."""

from __future__ import annotations

from collections.abc import Mapping

from segctl.core.flowlog import ALLOWED, DENIED, FlowEdge


def flow_edge(
    src: str,
    dst: str,
    port: int | None,
    proto: str = "tcp",
    verdict: str = ALLOWED,
    flows: int = 1,
    src_labels: Mapping[str, str] | None = None,
    dst_labels: Mapping[str, str] | None = None,
    first: float = 86400.0,
    last: float = 86400.0,
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
        first_seen=0.0,
        last_seen=1.0,
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
