"""Recorded flows for the replay tests: FlowEdges between the shipped directory's hosts."""

from __future__ import annotations

from segctl.core.flowlog import ALLOWED, DENIED, FlowEdge

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
